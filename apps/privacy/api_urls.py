from django.urls import path

from apps.privacy import api

urlpatterns = [
    path("sites/<slug:code>/summary/", api.SiteSummaryView.as_view(), name="privacy-site-summary"),
    path("action-table/", api.ActionTableView.as_view(), name="privacy-action-table"),
]
