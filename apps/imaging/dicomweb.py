"""DICOMweb STOW-RS door: who may send for which site; the service does the rest.

A DRF view, so session logins keep their CSRF check and HTTP Basic clients (curl, PACS gateways) need none;
Basic is listed first so that an anonymous caller gets 401 with a WWW-Authenticate challenge.
"""

import json

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import BaseParser
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


class StowView(APIView):
    """POST /api/imaging/dicomweb/studies[/{StudyInstanceUID}] with multipart/related; type="application/dicom"."""

    authentication_classes = [BasicAuthentication, SessionAuthentication]
    permission_classes = [IsCoordinatorOrAdmin]
    parser_classes = [MultipartRelatedParser]

    @extend_schema(
        operation_id="imaging_dicomweb_store_instances",
        request={stow.MULTIPART_RELATED: OpenApiTypes.BINARY},
        responses={(code, stow.DICOM_JSON_MEDIA_TYPE): OpenApiTypes.OBJECT for code in (200, 202, 409)},
        parameters=[OpenApiParameter("site", str, description="Site code; required for admins.")],
    )
    def post(self, request, study_uid: str | None = None):
        site = self.target_site(request)
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            content_length = 0
        try:
            outcome = stow.store_instances(
                site, request.user, request.stream, request.content_type, content_length, study_uid
            )
        except stow.StowError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        response = HttpResponse(
            json.dumps(outcome.body), status=outcome.status, content_type=stow.DICOM_JSON_MEDIA_TYPE
        )
        if outcome.queued:
            response["Location"] = reverse("upload-detail", args=[outcome.batch.pk])
        return response

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
