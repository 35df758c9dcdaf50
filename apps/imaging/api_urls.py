from rest_framework.routers import DefaultRouter

from apps.imaging import api

router = DefaultRouter()
router.register("uploads", api.UploadBatchViewSet, basename="upload")
router.register("cases", api.CaseViewSet, basename="case")
router.register("series", api.SeriesViewSet, basename="series")
router.register("enhancement-jobs", api.EnhancementJobViewSet, basename="enhancement-job")
urlpatterns = router.urls
