from rest_framework.routers import SimpleRouter

from apps.enhancement_models import api

router = SimpleRouter()
router.register("enhancement-models", api.EnhancementModelViewSet, basename="enhancement-model")
urlpatterns = router.urls
