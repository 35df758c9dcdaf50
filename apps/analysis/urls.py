from django.urls import path

from apps.analysis import power_views, views

app_name = "analysis"
urlpatterns = [
    path("studies/<int:pk>/exports/", views.study_exports, name="study_exports"),
    path("studies/<int:pk>/exports/<str:kind>.csv", views.export_csv, name="export_csv"),
    path("studies/<int:pk>/exports/jobs/", views.export_start, name="export_start"),
    path("studies/<int:pk>/report/", views.study_report, name="study_report"),
    path("studies/<int:pk>/report.pdf", views.study_report_pdf, name="study_report_pdf"),
    path("studies/<int:pk>/power/", power_views.study_power, name="study_power"),
    path("power/<int:job_id>/", power_views.power_job, name="power_job"),
    path("power/<int:job_id>/retry/", power_views.power_job_retry, name="power_job_retry"),
    path("jobs/<int:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/download/", views.job_download, name="job_download"),
    path("jobs/<int:job_id>/retry/", views.job_retry, name="job_retry"),
]
