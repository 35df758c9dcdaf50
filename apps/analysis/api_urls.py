from django.urls import path

from apps.analysis import api, power_views

app_name = "analysis-api"
urlpatterns = [
    path("studies/<int:pk>/exports/<str:kind>/", api.ExportCsv.as_view(), name="export_csv"),
    path("studies/<int:pk>/export-jobs/", api.ExportJobs.as_view(), name="export_jobs"),
    path("studies/<int:pk>/plan/", api.StudyPlan.as_view(), name="study_plan"),
    path("studies/<int:pk>/blinding-question/", api.StudyBlindingQuestion.as_view(), name="blinding_question"),
    path("studies/<int:pk>/power-analyses/", power_views.StudyPowerAnalyses.as_view(), name="power_analyses"),
    path("power-analyses/<int:job_id>/", power_views.PowerAnalysisDetail.as_view(), name="power_analysis"),
    path("power-analyses/<int:job_id>/retry/", power_views.PowerAnalysisRetry.as_view(), name="power_analysis_retry"),
    path("blinding/<str:task_token>/", api.TaskBlinding.as_view(), name="task_blinding"),
    path("export-jobs/<int:job_id>/", api.ExportJobDetail.as_view(), name="export_job"),
    path("export-jobs/<int:job_id>/download/", api.ExportJobDownload.as_view(), name="export_job_download"),
    path("export-jobs/<int:job_id>/retry/", api.ExportJobRetry.as_view(), name="export_job_retry"),
    path("rois/<str:task_token>/", api.TaskRois.as_view(), name="task_rois"),
    path("rois/<str:task_token>/<str:label>/", api.TaskRoi.as_view(), name="task_roi"),
]
