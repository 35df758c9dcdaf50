"""Privacy pages for coordinators (their own site) and admins: the certificate of an upload and the site summary.
Thin doors onto ``services.certificate``; the same document answers as HTML, JSON (?format=json) or PDF
(?format=pdf)."""

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from apps.accounts.access import is_admin, is_coordinator, page_for, restrict_to_site
from apps.imaging.models import UploadBatch
from apps.institutions.models import Institution
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
