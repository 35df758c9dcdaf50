from django.urls import path

from apps.privacy import api

urlpatterns = [
    path("sites/<slug:code>/summary/", api.SiteSummaryView.as_view(), name="privacy-site-summary"),
    path("action-table/", api.ActionTableView.as_view(), name="privacy-action-table"),
    path("allow-list/", api.AllowListView.as_view(), name="privacy-allow-list"),
]
urlpatterns += [
    path("series/<int:pk>/text/", api.SeriesTextView.as_view(), name="privacy-series-text"),
    path("series/<int:pk>/text/blank/", api.SeriesTextBlankView.as_view(), name="privacy-series-text-blank"),
    path("series/<int:pk>/text/reject/", api.SeriesTextRejectView.as_view(), name="privacy-series-text-reject"),
    path("series/<int:pk>/text/dismiss/", api.SeriesTextDismissView.as_view(), name="privacy-series-text-dismiss"),
]
