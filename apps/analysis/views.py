"""Admin pages: a study's exports (streamed or built by the worker) and its analysis report. Thin doors."""

from collections.abc import Callable

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.access import is_admin, page_for
from apps.analysis import exports, services
from apps.analysis.models import ExportJob, ExportKind
from apps.analysis.report import ReportMeta, render_html, render_pdf
from apps.analysis.stats import AnalysisResult
from apps.jobs import doors, lifecycle
from apps.jobs.models import JobStatus
from apps.studies.models import ReaderStudy

# Anonymous callers go to the login page; logged-in non-admins get the 403 page: only admins export or unblind.
admin_only = page_for(is_admin, "study admins")


def csv_response(study: ReaderStudy, kind: str) -> StreamingHttpResponse:
    """The export streamed as it is read from the database; never cached."""
    if kind not in exports.CSV_EXPORTS:
        raise Http404
    response = StreamingHttpResponse(exports.stream_csv(study, kind), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(study, kind)}"'
    response["Cache-Control"] = "private, no-store"
    return response


def job_file_response(job: ExportJob) -> FileResponse:
    if job.status != JobStatus.DONE or not job.file:
        raise Http404("The export is not ready.")
    response = FileResponse(job.file.open("rb"), as_attachment=True,
                            filename=exports.export_filename(job.study, job.kind))
    response["Cache-Control"] = "private, no-store"
    return response


@admin_only
def study_exports(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, pk=pk)
    kinds = [(kind, ExportKind(kind).label) for kind in exports.CSV_EXPORTS]
    jobs = study.export_jobs.select_related("created_by")[:50]
    return render(request, "analysis/study_exports.html",
                  {"study": study, "kinds": kinds, "job_kinds": ExportKind.choices, "jobs": jobs})


@admin_only
def export_csv(request: HttpRequest, pk: int, kind: str) -> StreamingHttpResponse:
    return csv_response(get_object_or_404(ReaderStudy, pk=pk), kind)


@admin_only
@require_POST
def export_start(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(ReaderStudy, pk=pk)
    kind = request.POST.get("kind", "")
    if kind not in ExportKind.values:
        return HttpResponse("Unknown export kind.", status=400)
    job = services.start_export(study, kind, request.user)
    return redirect("analysis:job_detail", job_id=job.pk)


@admin_only
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ExportJob.objects.select_related("study"), pk=job_id)
    if request.headers.get("Accept") == "application/json":
        return JsonResponse(job_payload(job))
    return render(request, "analysis/exportjob_detail.html", {"job": job, "payload": job_payload(job)})


@admin_only
@require_POST
def job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ExportJob, pk=job_id)
    doors.retry_from_page(request, lambda: services.retry_export(job), f"Export {job.pk} was queued again.")
    return redirect("analysis:job_detail", job_id=job.pk)


def job_payload(job: ExportJob) -> dict:
    done = job.status == JobStatus.DONE
    return {
        "id": job.pk,
        "study": job.study_id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "rows": job.rows,
        "error": job.error,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "can_retry": lifecycle.can_retry(job),
        "download_url": reverse("analysis:job_download", args=[job.pk]) if done else None,
    }


@admin_only
def job_download(request: HttpRequest, job_id: int) -> FileResponse:
    return job_file_response(get_object_or_404(ExportJob.objects.select_related("study"), pk=job_id))


def analysed(pk: int, build: Callable[[ReaderStudy, AnalysisResult, ReportMeta], HttpResponse]) -> HttpResponse:
    """Run the study's analysis and shape it with `build`; a study with nothing to analyse gets a page saying so."""
    study = get_object_or_404(ReaderStudy, pk=pk)
    try:
        result, meta = services.analyse_study(study)
    except ValueError as exc:
        return unavailable(study, str(exc))
    response = build(study, result, meta)
    response["Cache-Control"] = "private, no-store"
    return response


def unavailable(study: ReaderStudy, reason: str) -> HttpResponse:
    return HttpResponse(render_to_string("analysis/report_unavailable.html", {"study": study, "reason": reason}),
                        status=409)


@admin_only
def study_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The analysis of the study as it stands (runs the full analysis; the PDF can also be built by the worker)."""
    return analysed(pk, lambda study, result, meta: HttpResponse(render_html(
        result, meta, back_url=reverse("analysis:study_exports", args=[study.pk]),
        pdf_url=reverse("analysis:study_report_pdf", args=[study.pk]),
    )))


@admin_only
def study_report_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    def pdf(study: ReaderStudy, result: AnalysisResult, meta: ReportMeta) -> HttpResponse:
        response = HttpResponse(render_pdf(result, meta), content_type="application/pdf")
        name = exports.export_filename(study, ExportKind.REPORT)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    return analysed(pk, pdf)
