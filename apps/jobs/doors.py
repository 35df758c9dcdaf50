"""What a job's page and its admin action do on a retry, so that uploads, enhancement and exports answer alike."""

from collections.abc import Callable, Iterable

from django.contrib import messages
from django.http import HttpRequest

from apps.jobs import lifecycle
from apps.jobs.models import BackgroundJob


def retry_from_page(request: HttpRequest, retry: Callable[[], object], queued: str) -> None:
    """Runs ``retry`` and tells the user ``queued``, or why the job cannot be retried."""
    try:
        retry()
    except lifecycle.NotRetryable as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, queued)


def retry_selected(request: HttpRequest, jobs: Iterable[BackgroundJob],
                   retry: Callable[[BackgroundJob], object]) -> None:
    """The admin action: retries each selected job and names each one that cannot be, with the reason."""
    queued = refused = 0
    for job in jobs:
        try:
            retry(job)
            queued += 1
        except lifecycle.NotRetryable as exc:
            refused += 1
            messages.warning(request, f"{job}: {exc}")
    messages.info(request, f"{queued} queued again" + (f", {refused} not retryable." if refused else "."))
