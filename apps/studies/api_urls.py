from django.urls import include, path
from rest_framework.routers import SimpleRouter

from apps.accounts.api import ViewerPreferences
from apps.studies import api

app_name = "reading-api"

router = SimpleRouter()
router.register("studies", api.StudyViewSet, basename="study")

urlpatterns = [
    path("tasks/<str:task_token>/", api.TaskDetail.as_view(), name="task"),
    path("tasks/<str:task_token>/open/", api.TaskOpen.as_view(), name="open"),
    path("tasks/<str:task_token>/scores/", api.TaskScores.as_view(), name="scores"),
    path("tasks/<str:task_token>/submit/", api.TaskSubmit.as_view(), name="submit"),
    path("tasks/<str:task_token>/revise/", api.TaskRevise.as_view(), name="revise"),
    path("tasks/<str:task_token>/calibration-scores/", api.CalibrationScores.as_view(), name="calibration-scores"),
    path("preferences/", ViewerPreferences.as_view(), name="preferences"),
    path("", include(router.urls)),
]
