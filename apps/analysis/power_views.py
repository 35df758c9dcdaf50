"""The power page of a study (admins): a form that starts a power analysis with the study as pilot, the job's
progress, and its curves with their numbers; and the same through the API. Thin doors onto apps.analysis.power."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import IsAdmin
from apps.analysis import power
from apps.analysis.models import PowerAnalysisJob
from apps.analysis.report import png_data_uri, power_description, power_figure
from apps.analysis.serializers import DetailSerializer
from apps.analysis.stats.power import MAX_CASES, MAX_CLMM_FITS, MAX_DESIGNS, MAX_STUDIES, PowerInputError
from apps.analysis.views import admin_only
from apps.jobs import doors, lifecycle
from apps.jobs.models import JobStatus
from apps.studies.models import ReaderStudy

LIST_FIELDS = ("sequences", "items", "cases", "readers", "readers_per_case")
LIMITS = {"max_cases": MAX_CASES, "max_designs": MAX_DESIGNS, "max_studies": MAX_STUDIES,
          "max_clmm_fits": MAX_CLMM_FITS}


def job_payload(job: PowerAnalysisJob) -> dict:
    """What the page polls and the API returns: status, progress, the settings, and the curves once done."""
    return {
        "id": job.pk,
        "study": job.study_id,
        "status": job.status,
        "progress": job.progress,
        "designs": job.designs,
        "designs_done": job.designs_done,
        "error": job.error,
        "parameters": job.parameters,
        "power": job.result["power"] if job.result else None,
        "pilot": job.result["pilot"] if job.result else None,
        "url": reverse("analysis:power_job", args=[job.pk]),
    }


def _form_values(data) -> dict:
    """Settings from a form (modes checked one by one; every other field one text) or a JSON object."""
    if not hasattr(data, "getlist"):
        return dict(data)
    values = {name: data.get(name, "") for name in power.GRID_FIELDS + power.PLAN_FIELDS if name in data}
    values["modes"] = data.getlist("modes")
    return values


def _as_text(values: dict) -> dict:
    """Lists as the comma-separated text the form's fields hold."""
    return {k: ", ".join(map(str, v)) if isinstance(v, list) and k in LIST_FIELDS else v for k, v in values.items()}


@admin_only
def study_power(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the form (the study's plan and design as defaults) and its power analyses; POST: start one."""
    study = get_object_or_404(ReaderStudy, pk=pk)
    values, error, code = power.default_settings(study), "", 200
    if request.method == "POST":
        values = _form_values(request.POST)
        try:
            job = power.start_power_analysis(study, values, request.user)
        except PowerInputError as exc:
            error, code = str(exc), 400
        else:
            return redirect("analysis:power_job", job_id=job.pk)
    if values.get("effect") is None:
        values["effect"] = "pilot"
    return render(request, "analysis/study_power.html", {
        "study": study, "values": _as_text(values), "error": error, "limits": LIMITS,
        "jobs": study.power_analyses.select_related("created_by")[:20],
    }, status=code)


@admin_only
def power_job(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job's progress while it runs (the page refreshes), then its curves and the numbers behind them."""
    job = get_object_or_404(PowerAnalysisJob.objects.select_related("study"), pk=job_id)
    if request.headers.get("Accept") == "application/json":
        return JsonResponse(job_payload(job))
    curves = power.job_curves(job) if job.status == JobStatus.DONE else None
    context = {"job": job, "curves": curves, "can_retry": lifecycle.can_retry(job)}
    if curves is not None:
        context["figure"] = png_data_uri(power_figure(curves, f"Power with {job.study.title} as pilot", described=False))
        context["description"] = power_description(curves)
        context["rows"] = curves.table.to_dict("records")
        context["pilot"] = curves.pilot.to_dict("records")
    return render(request, "analysis/poweranalysisjob_detail.html", context)


@admin_only
@require_POST
def power_job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    """A failed power analysis, or one whose worker stopped, queued again (the shared lifecycle's retry)."""
    job = get_object_or_404(PowerAnalysisJob, pk=job_id)
    doors.retry_from_page(request, lambda: lifecycle.retry(job), f"Power analysis {job.pk} was queued again.")
    return redirect("analysis:power_job", job_id=job.pk)


class StudyPowerAnalyses(APIView):
    """Start a power analysis with the study as pilot: the body holds the settings of the power page (lists as
    JSON arrays); 202 with the job, 400 with every reason (negative counts, grids too large, a pilot that cannot be
    used)."""

    permission_classes = [IsAdmin]

    @extend_schema(request=OpenApiTypes.OBJECT,
                   responses={202: OpenApiTypes.OBJECT, 400: DetailSerializer,
                              404: OpenApiResponse(DetailSerializer, description="No such study.")})
    def post(self, request, pk: int) -> Response:
        study = get_object_or_404(ReaderStudy, pk=pk)
        if not isinstance(request.data, dict):
            return Response({"detail": "Send the settings as a JSON object."}, status=status.HTTP_400_BAD_REQUEST)
        try:
            job = power.start_power_analysis(study, _form_values(request.data), request.user)
        except PowerInputError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(job_payload(job), status=status.HTTP_202_ACCEPTED)


class PowerAnalysisDetail(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={200: OpenApiTypes.OBJECT,
                              404: OpenApiResponse(DetailSerializer, description="No such power analysis.")})
    def get(self, request, job_id: int) -> Response:
        """The job: status, progress (designs done of designs), and once done the curves and the pilot."""
        return Response(job_payload(get_object_or_404(PowerAnalysisJob, pk=job_id)))


class PowerAnalysisRetry(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=None,
                   responses={202: OpenApiTypes.OBJECT, 404: OpenApiResponse(DetailSerializer, description="No such job."),
                              409: OpenApiResponse(DetailSerializer, description="Not failed, and its worker is alive.")})
    def post(self, request, job_id: int) -> Response:
        """Queue a failed power analysis, or one whose worker stopped, again (as the page's Retry does)."""
        job = get_object_or_404(PowerAnalysisJob, pk=job_id)
        try:
            lifecycle.retry(job)
        except lifecycle.NotRetryable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(job_payload(job), status=status.HTTP_202_ACCEPTED)
