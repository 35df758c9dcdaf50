from django.urls import path
from rest_framework.routers import DefaultRouter

from apps.imaging import api, dicomweb

router = DefaultRouter()
router.register("uploads", api.UploadBatchViewSet, basename="upload")
router.register("cases", api.CaseViewSet, basename="case")
router.register("series", api.SeriesViewSet, basename="series")
router.register("enhancement-jobs", api.EnhancementJobViewSet, basename="enhancement-job")
urlpatterns = [
    path("dicomweb/studies", dicomweb.StowView.as_view(), name="stow-rs"),
    path("dicomweb/studies/<str:study_uid>", dicomweb.StowStudyView.as_view(), name="stow-rs-study"),
    *router.urls,
]
