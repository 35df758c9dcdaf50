"""REST doors onto the privacy evidence: certificates as JSON or PDF, the site summary, the action table."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import IsCoordinatorOrAdmin
from apps.imaging import deidentify
from apps.imaging.deid_allow_list import allow_list_document, allow_list_sha256
from apps.privacy import views
from apps.privacy.models import TextFinding
from apps.privacy.renderers import PdfRenderer
from apps.privacy.services import burned_in
from apps.privacy.services import certificate as certificates

DOCUMENT_RESPONSES = {
    (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="The document as JSON."),
    (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The document as PDF (?format=pdf)."),
    (404, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="No such upload or site (or not "
                                                                                "yours)."),
}


def document_response(request, document: dict, filename: str) -> HttpResponse | Response:
    """JSON, or the PDF when the client asked for it (Accept or ?format=pdf)."""
    if request.accepted_renderer.format == "pdf":
        return views.pdf_response(document, filename)
    return Response(document)


class SiteSummaryView(APIView):
    """Every upload of one site, for the privacy office (coordinators of that site and admins)."""

    permission_classes = [IsCoordinatorOrAdmin]
    renderer_classes = [JSONRenderer, PdfRenderer]

    @extend_schema(responses=DOCUMENT_RESPONSES)
    def get(self, request, code: str):
        site = views.visible_site(request.user, code)
        return document_response(request, certificates.site_summary(site), f"deidentification-site-{site.code}.pdf")


class ActionTableView(APIView):
    """The attribute-action table as applied; its canonical JSON's sha256 is the one every certificate names."""

    permission_classes = [IsCoordinatorOrAdmin]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The table and its sha256.")})
    def get(self, request):
        return Response({"sha256": deidentify.action_table_sha256(), "table": deidentify.action_table()})


class AllowListView(APIView):
    """The deny-by-default allow-list per SOP class; its canonical JSON's sha256 is the one certificates name."""

    permission_classes = [IsCoordinatorOrAdmin]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The allow-list and its sha256.")})
    def get(self, request):
        return Response({"sha256": allow_list_sha256(), "allow_list": allow_list_document()})


class TextFindingSerializer(serializers.ModelSerializer):
    class Meta:
        model = TextFinding
        fields = ["id", "series", "sop_uid", "boxes", "engine", "status", "blanked_sop_uid", "resolved_at"]
        read_only_fields = fields


class SeriesTextView(APIView):
    """The burned-in text OCR found in a series (boxes in image pixels; never the words), and whether it holds it."""

    permission_classes = [IsCoordinatorOrAdmin]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Findings and the hold.")})
    def get(self, request, pk: int):
        series = views.visible_series(request.user, pk)
        findings = TextFinding.objects.filter(series=series)
        return Response({"series": series.pk, "status": series.status, "hold_reason": series.hold_reason,
                         "release_refused": burned_in.release_refused(series),
                         "findings": TextFindingSerializer(findings, many=True).data})


class SeriesTextDecisionView(APIView):
    """A coordinator's decision on the series' open text findings: 200 with what was done, 409 when none is open."""

    permission_classes = [IsCoordinatorOrAdmin]

    def decide(self, series, user) -> dict:
        raise NotImplementedError

    @extend_schema(request=None, responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="What was done.")})
    def post(self, request, pk: int):
        series = views.visible_series(request.user, pk)
        try:
            return Response(self.decide(series, request.user))
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


class SeriesTextBlankView(SeriesTextDecisionView):
    """Blanks every box of the series' open findings into new instances (new SOP UIDs, 113101); audited."""

    def decide(self, series, user) -> dict:
        outcome = burned_in.blank_series(series, user)
        return {**outcome, "detail": views.blank_message(outcome)}


class SeriesTextDismissView(SeriesTextDecisionView):
    """The coordinator confirms the boxes hold no identifying text; releases the series as it is; audited."""

    def decide(self, series, user) -> dict:
        released = burned_in.dismiss_series(series, user)
        return {"series": series.pk, "released": released, "detail": views.dismiss_message(released)}


class SeriesTextRejectView(APIView):
    """Rejects a series (it is never read) and closes its findings; audited."""

    permission_classes = [IsCoordinatorOrAdmin]

    @extend_schema(request=None, responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Rejected.")})
    def post(self, request, pk: int):
        series = views.visible_series(request.user, pk)
        burned_in.reject_series(series, request.user)
        return Response({"series": series.pk, "status": "rejected"})
