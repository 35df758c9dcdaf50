"""Reader pages and the blinded image endpoint: thin doors onto `services.reading` and `services.images`.

Anything that is not the caller's answers 404, whatever the reason, so a token reveals nothing.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from apps.accounts.access import is_reader
from apps.studies.services import images, reading

BUNDLE = "reader/reading.js"
BUNDLE_CSS = "reader/reading.css"
NO_STORE = "private, no-store"


def _readers_only(view):
    """Readers only; everything reader-facing is private and never cached."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_reader(request.user):
            raise PermissionDenied("This page is for readers.")
        try:
            response = view(request, *args, **kwargs)
        except reading.NotFound as exc:
            raise Http404 from exc
        except reading.SessionLocked as exc:  # the reader's own task: say when its session opens
            raise PermissionDenied(str(exc)) from exc
        response["Cache-Control"] = NO_STORE
        return response

    return wrapped


def reader_only(view):
    """Reader pages: a caller who is not logged in is sent to the login page."""
    return login_required(_readers_only(view))


def reader_resource(view):
    """Reader images: a caller who is not logged in (the login ended) gets 401, not a login page that the viewer
    would try to decode as DICOM."""
    checked = _readers_only(view)

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            response = HttpResponse("Log in again to see images.", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Session realm="reading"'
            response["Cache-Control"] = NO_STORE
            return response
        return checked(request, *args, **kwargs)

    return wrapped


def _static_exists(path: str) -> bool:
    return bool(finders.find(path)) or staticfiles_storage.exists(path)


@require_GET
@reader_only
def worklist(request: HttpRequest) -> HttpResponse:
    return render(request, "studies/worklist.html", {
        "studies": reading.worklist(request.user), "calibration_help": reading.CALIBRATION_HELP,
    })


@require_GET
@reader_only
def resume(request: HttpRequest, study_token: str) -> HttpResponse:
    return redirect(reading.task_url(reading.resume_task(request.user, study_token)))


@require_GET
@reader_only
def task_page(request: HttpRequest, task_token: str) -> HttpResponse:
    task = reading.get_task(request.user, task_token)
    return render(request, "studies/reading.html", {
        "task_api_url": reading.task_api_url(task),
        "csrf_token_value": get_token(request),
        "bundle_available": _static_exists(BUNDLE),
        "bundle_css_available": _static_exists(BUNDLE_CSS),
    })


@require_GET
@reader_resource
def image(request: HttpRequest, image_token: str, slice_index: int) -> HttpResponse:
    """One blinded slice. Headers are the same for every image of the same size: no file name, ETag or dates."""
    data = images.blinded_slice(request.user, image_token, slice_index)
    response = HttpResponse(data, content_type="application/dicom")
    response["Content-Length"] = str(len(data))
    return response


@require_GET
@reader_resource
def image_range(request: HttpRequest, image_token: str) -> HttpResponse:
    """Blinded slices ?first=..&last=.. (inclusive) of one image in one multipart/related response: how the viewer
    loads a stack, one access check per range (issue 12, item 6). 400 with the reason for a malformed range."""
    try:
        first, last = int(request.GET["first"]), int(request.GET["last"])
        parts = images.blinded_range(request.user, image_token, first, last)
    except (KeyError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, images.BadRange) else "Give the range as ?first=<index>&last=<index>."
        return HttpResponse(reason, status=400, content_type="text/plain")
    body, content_type = images.multipart_related(parts)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Length"] = str(len(body))
    return response
