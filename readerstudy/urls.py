from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("apps.accounts.urls")),
    path("imaging/", include("apps.imaging.urls")),
    path("privacy/", include("apps.privacy.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/imaging/", include("apps.imaging.api_urls")),
    path("api/privacy/", include("apps.privacy.api_urls")),
    path("api/", include("apps.enhancement_models.api_urls")),
    path("reading/", include("apps.studies.urls")),
    path("api/reading/", include("apps.studies.api_urls")),
    path("analysis/", include("apps.analysis.urls")),
    path("api/analysis/", include("apps.analysis.api_urls")),
    path("", include("apps.accounts.home_urls")),
]
