"""Coordinator pages: uploads with per-file outcomes, and case metadata. Thin doors onto the services."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case as DbCase
from django.db.models import Prefetch, When
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.access import is_admin, is_coordinator, page_for, restrict_to_site
from apps.imaging.forms import CaseMetadataImportForm, UploadForm
from apps.imaging.models import Case, EnhancementJob, FileOutcome, Series, UploadBatch
from apps.imaging.serializers import UploadBatchSerializer
from apps.imaging.services import enhancement, metadata, uploads, vendor
from apps.jobs import doors, lifecycle

coordinator_or_admin = page_for(lambda u: is_coordinator(u) or is_admin(u), "site coordinators and admins")


def upload_site(request: HttpRequest, form: UploadForm):
    """Coordinators upload for their own site; admins choose one."""
    if is_coordinator(request.user):
        return request.user.institution
    site = form.cleaned_data.get("institution")
    if site is None:
        raise PermissionDenied("Choose the site the upload belongs to.")
    return site


@coordinator_or_admin
def upload_list(request: HttpRequest) -> HttpResponse:
    batches = restrict_to_site(UploadBatch.objects.select_related("institution"), request.user)[:200]
    return render(request, "imaging/uploadbatch_list.html", {"batches": batches, "form": UploadForm()})


@coordinator_or_admin
def upload_create(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method != "POST" or not form.is_valid():
        return render(request, "imaging/uploadbatch_list.html", {"batches": [], "form": form}, status=400)
    files = [(f.name, f) for f in form.cleaned_data["files"]]
    try:
        batch = uploads.stage_files(upload_site(request, form), request.user, files, channel="web",
                                    vendor_output=form.cleaned_data["vendor_output"])
    except uploads.UploadRefused as exc:
        batch = exc.batch
    else:
        uploads.enqueue_processing(batch)
    if request.headers.get("Accept") == "application/json":
        # The page pairs `items` (neutral names, in the order sent) with the file names only it knows.
        return JsonResponse({"id": batch.pk, "url": batch_url(batch), "items": batch.items}, status=201)
    return redirect("imaging:upload_detail", pk=batch.pk)


def batch_url(batch: UploadBatch) -> str:
    return reverse("imaging:upload_detail", args=[batch.pk])


@coordinator_or_admin
def upload_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(restrict_to_site(UploadBatch.objects.all(), request.user), pk=pk)
    if request.headers.get("Accept") == "application/json":
        return JsonResponse(UploadBatchSerializer(batch).data)
    rejected_first = DbCase(
        When(outcome=FileOutcome.REJECTED, then=0), When(reason__startswith="held_", then=1), default=2
    )
    results = batch.results.order_by(rejected_first, "name")
    context = {
        "batch": batch, "results": results, "summary": uploads.describe(batch), "can_retry": uploads.can_retry(batch),
    }
    return render(request, "imaging/uploadbatch_detail.html", context)


@coordinator_or_admin
@require_POST
def upload_retry(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(restrict_to_site(UploadBatch.objects.all(), request.user), pk=pk)
    doors.retry_from_page(request, lambda: uploads.retry_upload(batch),
                          "The upload was queued again; files already stored are skipped.")
    return redirect("imaging:upload_detail", pk=batch.pk)


@coordinator_or_admin
def case_list(request: HttpRequest) -> HttpResponse:
    series = Series.objects.select_related("dl_model").order_by("sequence", "version", "pk")
    cases = restrict_to_site(Case.objects.select_related("institution"), request.user).prefetch_related(
        Prefetch("series", queryset=series)
    )
    context = {"cases": cases, "form": CaseMetadataImportForm(), "vendor_rows": vendor.held_series(request.user),
               "vendor_linked": vendor.linked_series(request.user)}
    return render(request, "imaging/case_list.html", context)


@coordinator_or_admin
@require_POST
def case_metadata_import(request: HttpRequest) -> HttpResponse:
    form = CaseMetadataImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV file.")
        return redirect("imaging:case_list")
    site = None if is_admin(request.user) else request.user.institution
    report = metadata.import_case_metadata(form.cleaned_data["csv_file"], site)
    if report.errors:
        for error in report.errors[:50]:
            messages.error(request, error)
        messages.error(request, "Nothing was changed; correct the file and import it again.")
    else:
        messages.info(request, f"Clinical metadata updated for {report.updated} case(s).")
    return redirect("imaging:case_list")


@coordinator_or_admin
def job_list(request: HttpRequest) -> HttpResponse:
    """Enhancement jobs of the coordinator's site: status, device, timings and the residual safety check."""
    jobs = restrict_to_site(
        EnhancementJob.objects.select_related("series__case", "qa_accepted_by", "model"), request.user,
        "series__case__institution",
    )[:300]
    rows = [(job, enhancement.qa_failures(job), lifecycle.can_retry(job)) for job in jobs]
    context = {"rows": rows, "vendor_rows": vendor.held_series(request.user)}
    return render(request, "imaging/enhancementjob_list.html", context)


@coordinator_or_admin
@require_POST
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    jobs = restrict_to_site(EnhancementJob.objects.all(), request.user, "series__case__institution")
    job = get_object_or_404(jobs, pk=pk)
    doors.retry_from_page(request, lambda: enhancement.retry_enhancement(job),
                          f"Enhancement job {job.pk} was queued again.")
    return redirect("imaging:job_list")


@coordinator_or_admin
@require_POST
def job_accept(request: HttpRequest, pk: int) -> HttpResponse:
    """A coordinator or admin looked at a flagged pair (difference image) and lets readers see it."""
    jobs = restrict_to_site(EnhancementJob.objects.select_related("series__case"), request.user,
                            "series__case__institution")
    job = get_object_or_404(jobs, pk=pk)
    try:
        enhancement.accept_qa(job, request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Enhancement job {job.pk}: accepted for reading despite the residual check.")
    return redirect("imaging:job_list")
