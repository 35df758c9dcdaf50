from django.urls import path

from apps.imaging import views

app_name = "imaging"
urlpatterns = [
    path("uploads/", views.upload_list, name="upload_list"),
    path("uploads/new/", views.upload_create, name="upload_create"),
    path("uploads/<int:pk>/", views.upload_detail, name="upload_detail"),
    path("uploads/<int:pk>/retry/", views.upload_retry, name="upload_retry"),
    path("cases/", views.case_list, name="case_list"),
    path("cases/import/", views.case_metadata_import, name="case_metadata_import"),
    path("enhancement/", views.job_list, name="job_list"),
    path("enhancement/<int:pk>/retry/", views.job_retry, name="job_retry"),
    path("enhancement/<int:pk>/accept/", views.job_accept, name="job_accept"),
]
