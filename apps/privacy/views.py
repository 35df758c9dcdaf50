"""Privacy pages for coordinators (their own site) and admins: the certificate of an upload and the site summary
(the same document as HTML, JSON with ?format=json or PDF with ?format=pdf), and the review of burned-in text
(boxes over the images; blank or reject). Thin doors onto ``services``."""

import io

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from PIL import Image

from apps.accounts.access import is_admin, is_coordinator, page_for, restrict_to_site
from apps.imaging import blinding
from apps.imaging.models import Series, UploadBatch
from apps.imaging.services import storage
from apps.institutions.models import Institution
from apps.privacy import text_detection
from apps.privacy.models import FindingStatus, TextFinding
from apps.privacy.services import burned_in
from apps.privacy.services import certificate as certificates
from apps.privacy.services.certificate_pdf import render_pdf

coordinator_or_admin = page_for(lambda u: is_coordinator(u) or is_admin(u), "site coordinators and admins")
FORMATS = ("html", "json", "pdf")


def visible_batch(user, pk: int) -> UploadBatch:
    """An upload the user may see the certificate of: their site's (coordinators) or any (admins); else 404."""
    return get_object_or_404(restrict_to_site(UploadBatch.objects.select_related("institution"), user), pk=pk)


def visible_site(user, code: str) -> Institution:
    site = get_object_or_404(Institution, code=code)
    if not (is_admin(user) or (is_coordinator(user) and user.institution_id == site.pk)):
        raise Http404("No such site.")
    return site


def pdf_response(document: dict, filename: str) -> HttpResponse:
    response = HttpResponse(render_pdf(document["title"], certificates.blocks(document)),
                            content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def respond(request: HttpRequest, document: dict, filename: str, back: str) -> HttpResponse:
    fmt = request.GET.get("format", "html")
    if fmt not in FORMATS:
        return HttpResponse(f"format is one of {', '.join(FORMATS)}.", status=400, content_type="text/plain")
    if fmt == "json":
        return JsonResponse(document)
    if fmt == "pdf":
        return pdf_response(document, filename)
    context = {"document": document, "blocks": certificates.blocks(document), "back": back,
               "json_url": request.path + "?format=json", "pdf_url": request.path + "?format=pdf"}
    return render(request, "privacy/certificate.html", context)


@coordinator_or_admin
def upload_certificate(request: HttpRequest, pk: int) -> HttpResponse:
    batch = visible_batch(request.user, pk)
    return respond(request, certificates.certificate(batch), f"deidentification-upload-{batch.pk}.pdf",
                   reverse("imaging:upload_detail", args=[batch.pk]))


@coordinator_or_admin
def site_summary(request: HttpRequest, code: str) -> HttpResponse:
    site = visible_site(request.user, code)
    return respond(request, certificates.site_summary(site), f"deidentification-site-{site.code}.pdf",
                   reverse("privacy:index"))


@coordinator_or_admin
def index(request: HttpRequest) -> HttpResponse:
    """The sites whose summary the user may read: their own (coordinators) or all (admins)."""
    sites = Institution.objects.all() if is_admin(request.user) else Institution.objects.filter(
        pk=request.user.institution_id)
    return render(request, "privacy/index.html", {"sites": sites})


def visible_series(user, pk: int) -> Series:
    return get_object_or_404(restrict_to_site(Series.objects.select_related("case"), user, "case__institution"), pk=pk)


@coordinator_or_admin
def series_text(request: HttpRequest, pk: int) -> HttpResponse:
    """The images of a series in which OCR found text, with the boxes drawn over them; blank or reject."""
    series = visible_series(request.user, pk)
    findings = burned_in.open_findings(series).select_related("instance")
    done = TextFinding.objects.filter(series=series).exclude(status=FindingStatus.OPEN).select_related("resolved_by")
    context = {"series": series, "findings": findings, "done": done,
               "refused": burned_in.release_refused(series)}
    return render(request, "privacy/series_text.html", context)


@coordinator_or_admin
def finding_image(request: HttpRequest, pk: int) -> HttpResponse:
    """The stored (de-identified) image of a finding as PNG, for its site's coordinator: it may show the text."""
    finding = get_object_or_404(
        restrict_to_site(TextFinding.objects.select_related("instance"), request.user, "series__case__institution"),
        pk=pk, instance__isnull=False)
    pixels = blinding.modality_pixels(storage.read_dataset(finding.instance))
    buffer = io.BytesIO()
    Image.fromarray(text_detection.to_8bit(pixels)).save(buffer, format="PNG")
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response


def _decide(request: HttpRequest, pk: int, decision, message) -> HttpResponse:
    """Runs the coordinator's decision on a series' text findings and says what it did (or why it could not)."""
    series = visible_series(request.user, pk)
    try:
        outcome = decision(series, request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, message(outcome))
    return redirect("privacy:series_text", pk=series.pk)


@coordinator_or_admin
@require_POST
def series_text_blank(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, burned_in.blank_series, blank_message)


@coordinator_or_admin
@require_POST
def series_text_reject(request: HttpRequest, pk: int) -> HttpResponse:
    series = visible_series(request.user, pk)
    burned_in.reject_series(series, request.user)
    messages.info(request, "The series was rejected: it will never be shown to readers.")
    return redirect("privacy:series_text", pk=series.pk)


@coordinator_or_admin
@require_POST
def series_text_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, burned_in.dismiss_series, dismiss_message)


def dismiss_message(released: bool) -> str:
    text = "Recorded: the boxes hold no identifying text, the images stay as they are."
    return text + (" The series is released." if released else " Something else still holds the series (see status).")


def blank_message(outcome: dict) -> str:
    text = f"{outcome['blanked']} image(s) blanked into new instances (Clean Pixel Data, 113101)."
    if outcome["still_with_text"]:
        return text + f" OCR still finds text in {outcome['still_with_text']}: look again, blank again or reject."
    return text + (" No text is left: the series is released." if outcome["released"] else "")
