"""The model registry's API: staff list and read models; only admins register (multipart upload) or retire them.

There is no delete: a model that made DL series is part of their provenance (retire it instead), and the built-in
model can be neither deleted nor retired.
"""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.accounts.access import IsAdmin, IsCoordinatorOrAdmin
from apps.enhancement_models import services
from apps.enhancement_models.models import EnhancementModel
from apps.enhancement_models.serializers import (
    EnhancementModelSerializer,
    EnhancementModelUploadSerializer,
    RefusalSerializer,
    RetireSerializer,
)
from worker.enhance.contract import InputContract

# Room for the multipart framing and the text fields around the file.
FORM_OVERHEAD_BYTES = 1024 * 1024


def _refused(exc: services.RegistrationRefused) -> Response:
    return Response({"code": exc.code, "detail": exc.reason},
                    status=services.REFUSAL_HTTP_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST))


class EnhancementModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = EnhancementModel.objects.select_related("registered_by", "retired_by")
    serializer_class = EnhancementModelSerializer

    def get_permissions(self):
        admin_only = self.action in ("create", "retire")
        return [IsAdmin()] if admin_only else [IsCoordinatorOrAdmin()]

    @extend_schema(request={"multipart/form-data": EnhancementModelUploadSerializer},
                   responses={201: EnhancementModelSerializer, 400: RefusalSerializer, 413: RefusalSerializer})
    def create(self, request):
        """Registers an ONNX model after trying it on a phantom series; 400 (413 for an oversized file) with a
        `code` and a `detail` saying why it was refused."""
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.MAX_MODEL_BYTES + FORM_OVERHEAD_BYTES:  # refused before the body is read
            return _refused(services.RegistrationRefused(
                "oversized", f"the request has {length} bytes; a model file may have {settings.MAX_MODEL_BYTES}"))
        form = EnhancementModelUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            model = services.register_model(
                request.user, data["file"], name=data["name"], version=data["version"],
                card=services.ModelCard(data["intended_use"], data["training_data"], data["licence"]),
                contract=InputContract(data["slices"], data["normalisation"], data["max_matrix"],
                                       data["pad_multiple"], data["context_input"]),
            )
        except services.RegistrationRefused as exc:
            return _refused(exc)
        return Response(EnhancementModelSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RetireSerializer, responses={200: EnhancementModelSerializer})
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        """No new job uses the model; what it made keeps its provenance. The built-in model cannot be retired."""
        model = self.get_object()
        form = RetireSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            services.retire_model(model, request.user, form.validated_data["reason"])
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(EnhancementModelSerializer(model).data)
