"""REST API for coordinators and admins. Every queryset goes through `restrict_to_site`."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.accounts.access import IsCoordinatorOrAdmin, is_coordinator, restrict_to_site
from apps.imaging.models import Case, EnhancementJob, Series, UploadBatch
from apps.imaging.serializers import (
    CaseSerializer,
    EnhancementJobSerializer,
    SeriesSerializer,
    UploadBatchSerializer,
    UploadCreateSerializer,
    VendorAttachSerializer,
)
from apps.imaging.services import enhancement, uploads, vendor
from apps.imaging.services import series as series_service
from apps.jobs import lifecycle
from apps.privacy import api as privacy_api
from apps.privacy.renderers import PdfRenderer
from apps.privacy.services import certificate as certificates


class SiteScopedViewSet(viewsets.GenericViewSet):
    permission_classes = [IsCoordinatorOrAdmin]
    site_field = "institution"

    def get_queryset(self):
        return restrict_to_site(self.queryset, self.request.user, self.site_field)


class UploadBatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, SiteScopedViewSet):
    queryset = UploadBatch.objects.select_related("institution").prefetch_related("results")
    serializer_class = UploadBatchSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=UploadCreateSerializer, responses={201: UploadBatchSerializer})
    def create(self, request):
        """Stages the files (zip archives are unpacked safely) and queues their processing."""
        form = UploadCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        site = request.user.institution if is_coordinator(request.user) else form.validated_data.get("institution")
        if site is None:
            raise ValidationError({"institution": "Admins name the site the upload belongs to."})
        files = [(f.name, f) for f in form.validated_data["files"]]
        try:
            # Not in a transaction: a refused upload stays on record under its id, with each item's reason.
            batch = uploads.stage_files(site, request.user, files, channel="api",
                                        vendor_output=form.validated_data["vendor_output"])
        except uploads.UploadRefused as exc:
            return Response(UploadBatchSerializer(exc.batch).data, status=status.HTTP_400_BAD_REQUEST)
        uploads.enqueue_processing(batch)
        return Response(UploadBatchSerializer(batch).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: UploadBatchSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        batch = self.get_object()
        try:
            uploads.retry_upload(batch)
        except uploads.NothingToRetry as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(UploadBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=privacy_api.DOCUMENT_RESPONSES)
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PdfRenderer])
    def certificate(self, request, pk=None):
        """The upload's de-identification certificate: profile, options and codes, the action table's version and
        sha256, counts per attribute and action, UID and date handling, files held or rejected and why, and what is
        not done. JSON, or PDF with ?format=pdf. Holds no original value."""
        batch = self.get_object()
        return privacy_api.document_response(
            request, certificates.certificate(batch), f"deidentification-upload-{batch.pk}.pdf"
        )


class CaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, SiteScopedViewSet):
    queryset = Case.objects.select_related("institution").prefetch_related("series")
    serializer_class = CaseSerializer
    http_method_names = ["get", "patch", "head", "options"]


class SeriesViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, SiteScopedViewSet):
    """Coordinators correct the sequence or release/hold a series; nothing else is writable."""

    queryset = Series.objects.select_related("case")
    serializer_class = SeriesSerializer
    site_field = "case__institution"
    # POST only reaches the attach-vendor action (there is no create); it answered 405 while POST was left out.
    http_method_names = ["get", "patch", "post", "head", "options"]

    def perform_update(self, serializer):
        for field, value in serializer.validated_data.items():
            setattr(serializer.instance, field, value)
        try:
            series_service.save_coordinator_changes(serializer.instance, set(serializer.validated_data))
        except DjangoValidationError as exc:
            raise ValidationError({"status": exc.messages}) from exc

    @extend_schema(request=VendorAttachSerializer, responses={200: SeriesSerializer})
    @action(detail=True, methods=["post"], url_path="attach-vendor")
    def attach_vendor(self, request, pk=None):
        """Links a held vendor-enhanced series (body: {"vendor_series": id}) as this conventional series' vendor DL
        version: same study, geometry and sequence, else 400 saying what differs; releases its hold; audited. The
        series' DL versions from models stay (they are other sources)."""
        conventional = self.get_object()
        form = VendorAttachSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        held = self.get_queryset().filter(pk=form.validated_data["vendor_series"]).first()
        if held is None:
            raise ValidationError({"vendor_series": "No such series of your site."})
        try:
            vendor.attach_vendor_series(conventional, held)
        except ValueError as exc:
            raise ValidationError({"vendor_series": str(exc)}) from exc
        conventional.refresh_from_db()
        return Response(SeriesSerializer(conventional).data)

    @extend_schema(request=None, responses={200: SeriesSerializer})
    @action(detail=True, methods=["post"], url_path="detach-vendor")
    def detach_vendor(self, request, pk=None):
        """Undoes the link of this vendor-enhanced series to its conventional series: held again, waiting to be
        linked by a coordinator (never by itself again); 409 with the reason when a study reads the pair."""
        try:
            held = vendor.detach_vendor_series(self.get_object())
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(SeriesSerializer(held).data)


class EnhancementJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, SiteScopedViewSet):
    queryset = EnhancementJob.objects.select_related("series")
    serializer_class = EnhancementJobSerializer
    site_field = "series__case__institution"

    @action(detail=True, methods=["get"], url_path="difference-image")
    def difference_image(self, request, pk=None):
        """The residual (conventional minus DL) of the slice with most residual energy, for the safety check."""
        job = self.get_object()
        if not job.difference_image:
            raise NotFound("This job has no difference image yet.")
        return FileResponse(job.difference_image.open("rb"), content_type="image/png")

    @extend_schema(request=None, responses={202: EnhancementJobSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        job = self.get_object()
        try:
            enhancement.retry_enhancement(job)
        except lifecycle.NotRetryable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(EnhancementJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: EnhancementJobSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """Lets a pair whose residual check failed be read; records who accepted it and when."""
        job = self.get_object()
        try:
            enhancement.accept_qa(job, request.user)
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(EnhancementJobSerializer(job).data)
