from django.urls import path

from apps.privacy import views

app_name = "privacy"
urlpatterns = [
    path("", views.index, name="index"),
    path("uploads/<int:pk>/certificate/", views.upload_certificate, name="upload_certificate"),
    path("sites/<slug:code>/", views.site_summary, name="site_summary"),
]
