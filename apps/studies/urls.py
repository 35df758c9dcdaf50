from django.urls import path

from apps.studies import views

app_name = "reading"

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("study/<str:study_token>/resume/", views.resume, name="resume"),
    path("task/<str:task_token>/", views.task_page, name="task"),
    path("img/<str:image_token>/<int:slice_index>.dcm", views.image, name="image"),
    path("img/<str:image_token>/slices/", views.image_range, name="image-range"),
]
