"""DICOMweb STOW-RS door: who may send for which site; the service does the rest.

A DRF view, so session logins keep their CSRF check and HTTP Basic clients (curl, PACS gateways) need none;
Basic is listed first so that an anonymous caller gets 401 with a WWW-Authenticate challenge. DRF negotiates the
answer's media type before the view runs, so the view names the one STOW-RS senders ask for
(`Accept: application/dicom+json`, PS3.18 10.5.3) next to plain JSON; without it they were refused with 406.
"""

import json
from typing import BinaryIO

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAcceptable, PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import IsCoordinatorOrAdmin, is_coordinator
from apps.accounts.authentication import BasicAuthentication
from apps.imaging.services import stow
from apps.institutions.models import Institution


class MultipartRelatedParser(BaseParser):
    """Leaves the body unread: the STOW-RS service streams it to disk part by part."""

    media_type = stow.MULTIPART_RELATED

    def parse(self, stream, media_type=None, parser_context=None):
        return stream


class DicomJsonRenderer(JSONRenderer):
    """The Store Instances Response's media type; a refusal ({"detail": ...}) is rendered in it when asked for."""

    media_type = stow.DICOM_JSON_MEDIA_TYPE
    format = "dicom+json"


class StowContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with a 406 that says what the server can answer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            raise NotAcceptable(
                f"STOW-RS answers with {stow.DICOM_JSON_MEDIA_TYPE} (or application/json); "
                "the Accept header allows neither."
            ) from None


class StowView(APIView):
    """POST /api/imaging/dicomweb/studies[/{StudyInstanceUID}] with multipart/related; type="application/dicom"."""

    authentication_classes = [BasicAuthentication, SessionAuthentication]
    permission_classes = [IsCoordinatorOrAdmin]
    parser_classes = [MultipartRelatedParser]
    renderer_classes = [JSONRenderer, DicomJsonRenderer]
    content_negotiation_class = StowContentNegotiation

    @extend_schema(
        operation_id="imaging_dicomweb_store_instances",
        request={stow.MULTIPART_RELATED: OpenApiTypes.BINARY},
        responses={(code, stow.DICOM_JSON_MEDIA_TYPE): OpenApiTypes.OBJECT for code in (200, 202, 409)},
        parameters=[OpenApiParameter("site", str, description="Site code; required for admins.")],
    )
    def post(self, request, study_uid: str | None = None):
        site = self.target_site(request)
        try:
            stream, content_length = self.request_body(request)
            outcome = stow.store_instances(site, request.user, stream, request.content_type, content_length, study_uid)
        except stow.StowError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        response = HttpResponse(
            json.dumps(outcome.body), status=outcome.status, content_type=stow.DICOM_JSON_MEDIA_TYPE
        )
        if outcome.queued:
            response["Location"] = reverse("upload-detail", args=[outcome.batch.pk])
        return response

    @staticmethod
    def request_body(request) -> tuple[BinaryIO | None, int | None]:
        """The body and its announced length.

        A chunked body has no Content-Length (dicomweb-client sends one above its chunk size, 1 MB by default);
        it is read from the server's own input where the server de-chunks it and says so (gunicorn sets
        `wsgi.input_terminated`). Django's development server cannot, so it answers 411 rather than reading an
        empty body and calling it truncated.
        """
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            if not meta.get("wsgi.input_terminated"):
                raise stow.StowError(
                    411, "This server cannot read a chunked request body: send it with a Content-Length "
                    "(dicomweb-client: a chunk_size larger than the request), or through the production server."
                )
            return meta["wsgi.input"], None
        try:
            content_length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            content_length = 0
        return request.stream, content_length

    @staticmethod
    def target_site(request) -> Institution:
        """Coordinators send for their own site; admins name it with ?site=CODE."""
        code = request.query_params.get("site", "")
        if is_coordinator(request.user):
            if code and code != request.user.institution.code:
                raise PermissionDenied("Coordinators send studies for their own site only.")
            return request.user.institution
        site = Institution.objects.filter(code=code).first() if code else None
        if site is None:
            raise ValidationError({"site": "Admins name an existing site with ?site=CODE."})
        return site


@extend_schema_view(post=extend_schema(operation_id="imaging_dicomweb_store_study_instances"))
class StowStudyView(StowView):
    """The same, for one study: instances of any other study fail (409 when none is stored)."""
