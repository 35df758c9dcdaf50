"""Analysis API: exports, export jobs and the analysis plan (admins), and ROIs of a reading task (the reader, by
task token)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import IsAdmin
from apps.analysis import blinding, exports, plan, rois, services, views
from apps.analysis.models import AnalysisPlan, ExportJob, RoiLabel
from apps.analysis.serializers import (
    AnalysisPlanSerializer,
    DetailSerializer,
    ExportJobCreateSerializer,
    ExportJobSerializer,
    RoiSerializer,
)
from apps.jobs import lifecycle
from apps.studies.api import ReaderTaskView
from apps.studies.models import ReaderStudy


class CsvRenderer(BaseRenderer):
    """Lets a client ask for text/csv; the CSV itself is a streamed response, not rendered data."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class AdminView(APIView):
    permission_classes = [IsAdmin]


NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such study, job or task (or not yours).")


class ExportCsv(AdminView):
    """The export streamed as CSV (`kind`: long, wide, assignment, patients, rois)."""

    renderer_classes = [CsvRenderer, JSONRenderer]

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(exports.CSV_EXPORTS))],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The CSV, streamed, as an attachment."),
            (404, "application/json"): NOT_FOUND,
        },
    )
    def get(self, request, pk: int, kind: str):
        return views.csv_response(get_object_or_404(ReaderStudy, pk=pk), kind)


class ExportJobs(AdminView):
    @extend_schema(request=ExportJobCreateSerializer, responses={202: ExportJobSerializer, 404: NOT_FOUND})
    def post(self, request, pk: int) -> Response:
        """Queue an export (or the PDF report) for the worker; poll the job for progress and the download link."""
        study = get_object_or_404(ReaderStudy, pk=pk)
        form = ExportJobCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = services.start_export(study, form.validated_data["kind"], request.user)
        return Response(views.job_payload(job), status=status.HTTP_202_ACCEPTED)


class ExportJobDetail(AdminView):
    @extend_schema(responses={200: ExportJobSerializer, 404: NOT_FOUND})
    def get(self, request, job_id: int) -> Response:
        return Response(views.job_payload(get_object_or_404(ExportJob, pk=job_id)))


class ExportJobRetry(AdminView):
    @extend_schema(
        request=None,
        responses={202: ExportJobSerializer, 404: NOT_FOUND,
                   409: OpenApiResponse(DetailSerializer, description="Not failed, and its worker is alive.")},
    )
    def post(self, request, job_id: int) -> Response:
        """Queue a failed export, or one whose worker stopped, again."""
        job = get_object_or_404(ExportJob, pk=job_id)
        try:
            services.retry_export(job)
        except lifecycle.NotRetryable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(views.job_payload(job), status=status.HTTP_202_ACCEPTED)


class ExportJobDownload(AdminView):
    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="A CSV export, as an attachment."),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF report."),
            (404, "application/json"): OpenApiResponse(DetailSerializer, description="No such job, or not done yet."),
        },
    )
    def get(self, request, job_id: int):
        return views.job_file_response(get_object_or_404(ExportJob.objects.select_related("study"), pk=job_id))


class StudyPlan(AdminView):
    """The study's analysis plan: set it (PUT) or change part of it (PATCH) while the study is a draft; opening the
    study locks it (sha256 of its canonical JSON, time), after which any change answers 409."""

    def handle_exception(self, exc):
        if isinstance(exc, plan.PlanLocked):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, plan.PlanInvalid):
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    @extend_schema(responses={200: AnalysisPlanSerializer, 404: NOT_FOUND})
    def get(self, request, pk: int) -> Response:
        study = get_object_or_404(ReaderStudy, pk=pk)
        return Response(AnalysisPlanSerializer(get_object_or_404(AnalysisPlan, study=study)).data)

    @extend_schema(
        request=AnalysisPlanSerializer,
        responses={200: AnalysisPlanSerializer, 400: DetailSerializer, 404: NOT_FOUND, 409: DetailSerializer},
    )
    def put(self, request, pk: int) -> Response:
        return self._write(request, pk, partial=False)

    @extend_schema(
        request=AnalysisPlanSerializer,
        responses={200: AnalysisPlanSerializer, 400: DetailSerializer, 404: NOT_FOUND, 409: DetailSerializer},
    )
    def patch(self, request, pk: int) -> Response:
        return self._write(request, pk, partial=True)

    def _write(self, request, pk: int, partial: bool) -> Response:
        study = get_object_or_404(ReaderStudy, pk=pk)
        existing = AnalysisPlan.objects.filter(study=study).first()
        plan.require_changeable(study, existing)  # a locked plan answers 409 whatever the body says
        form = AnalysisPlanSerializer(existing, data=request.data, partial=partial)
        form.is_valid(raise_exception=True)
        saved = plan.set_plan(study, dict(form.validated_data), request.user, partial=partial)
        return Response(AnalysisPlanSerializer(saved).data)


class StudyBlindingQuestion(AdminView):
    """Whether the study asks readers, after each submitted task, which image they think is DL-enhanced.
    Set while the study is a draft; fixed (409) once it has opened."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: NOT_FOUND})
    def get(self, request, pk: int) -> Response:
        return Response({"enabled": blinding.enabled(get_object_or_404(ReaderStudy, pk=pk))})

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT, 400: DetailSerializer,
                                                          404: NOT_FOUND, 409: DetailSerializer})
    def put(self, request, pk: int) -> Response:
        study = get_object_or_404(ReaderStudy, pk=pk)
        on = request.data.get("enabled")
        if not isinstance(on, bool):
            return Response({"detail": "Send {\"enabled\": true} or {\"enabled\": false}."},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            return Response({"enabled": blinding.set_enabled(study, on, request.user)})
        except blinding.BlindingLocked as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


class TaskBlinding(ReaderTaskView):
    """The blinding question of the reader's submitted task: asked once, after the scores, and never again."""

    def handle_exception(self, exc):
        if isinstance(exc, blinding.BlindingError):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, ValueError):
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: NOT_FOUND})
    def get(self, request, task_token: str) -> Response:
        """``{"ask": false}``, or the question, its choices and the value that records a skip."""
        return Response(blinding.question(self.task(request, task_token)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT, 400: DetailSerializer,
                                                          404: NOT_FOUND, 409: DetailSerializer})
    def post(self, request, task_token: str) -> Response:
        """``{"answer": <choice>}``; the answer is kept and never shown again; nothing says whether it was right."""
        blinding.answer(request.user, self.task(request, task_token), request.data.get("answer"))
        return Response({"answered": True}, status=status.HTTP_201_CREATED)


class RoiView(ReaderTaskView):
    def handle_exception(self, exc):
        if isinstance(exc, rois.RoiReadOnly):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, rois.RoiError):
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


class TaskRois(RoiView):
    """The reader's ROIs on the task's image. Drawing a label again replaces it; statistics stay server-side."""

    @extend_schema(responses=RoiSerializer(many=True))
    def get(self, request, task_token: str) -> Response:
        task = self.task(request, task_token)
        return Response(RoiSerializer(rois.reader_rois(request.user, task), many=True).data)

    @extend_schema(request=RoiSerializer, responses={201: RoiSerializer, 400: DetailSerializer, 404: NOT_FOUND})
    def post(self, request, task_token: str) -> Response:
        task = self.task(request, task_token)
        form = RoiSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        label = data.pop("label")
        roi = rois.save_roi(request.user, task, label, rois.Ellipse(**data))
        return Response(RoiSerializer(roi).data, status=status.HTTP_201_CREATED)


class TaskRoi(RoiView):
    @extend_schema(
        parameters=[OpenApiParameter("label", str, OpenApiParameter.PATH, enum=RoiLabel.values)],
        responses={204: None, 404: OpenApiResponse(description="No such task, or no ROI with this label.")},
    )
    def delete(self, request, task_token: str, label: str) -> Response:
        task = self.task(request, task_token)
        if not rois.delete_roi(request.user, task, label):
            return Response(status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
