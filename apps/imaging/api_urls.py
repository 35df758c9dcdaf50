from django.urls import path
from rest_framework.routers import APIRootView, DefaultRouter

from apps.accounts.access import IsCoordinatorOrAdmin
from apps.imaging import api, dicomweb


class ImagingApiRoot(APIRootView):
    """The list of imaging endpoints: staff only, like the schema."""

    permission_classes = [IsCoordinatorOrAdmin]


router = DefaultRouter()
router.APIRootView = ImagingApiRoot
router.register("uploads", api.UploadBatchViewSet, basename="upload")
router.register("cases", api.CaseViewSet, basename="case")
router.register("series", api.SeriesViewSet, basename="series")
router.register("enhancement-jobs", api.EnhancementJobViewSet, basename="enhancement-job")
urlpatterns = [
    path("dicomweb/studies", dicomweb.StowView.as_view(), name="stow-rs"),
    path("dicomweb/studies/<str:study_uid>", dicomweb.StowStudyView.as_view(), name="stow-rs-study"),
    *router.urls,
]
