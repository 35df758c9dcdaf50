from django.urls import path

from apps.privacy import views

app_name = "privacy"
urlpatterns = [
    path("", views.index, name="index"),
    path("uploads/<int:pk>/certificate/", views.upload_certificate, name="upload_certificate"),
    path("sites/<slug:code>/", views.site_summary, name="site_summary"),
]
urlpatterns += [
    path("series/<int:pk>/text/", views.series_text, name="series_text"),
    path("series/<int:pk>/text/blank/", views.series_text_blank, name="series_text_blank"),
    path("series/<int:pk>/text/reject/", views.series_text_reject, name="series_text_reject"),
    path("series/<int:pk>/text/dismiss/", views.series_text_dismiss, name="series_text_dismiss"),
    path("findings/<int:pk>/image.png", views.finding_image, name="finding_image"),
]
