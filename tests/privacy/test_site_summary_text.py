"""The per-site privacy summary counts the burned-in text check over every upload of the site (issue 15, item 3):
images read, images with text, and what became of them (still held, blanked, dismissed, rejected), in JSON and PDF."""

import pytest
from django.urls import reverse

from apps.imaging.models import Series
from tests.privacy.test_burned_in_text import TEXTED, coordinator, queued_enhancements, series_files, upload  # noqa: F401
from tests.privacy.test_certificate import pdf_text

pytestmark = pytest.mark.django_db


def test_the_site_summary_counts_text_held_blanked_dismissed_and_rejected(client, coordinator,  # noqa: F811
                                                                          django_capture_on_commit_callbacks):
    series_ids = []
    for _ in range(4):
        files, _ = series_files(TEXTED)
        upload(client, coordinator, files, django_capture_on_commit_callbacks)
        series_ids.append(Series.objects.latest("pk").pk)
    clean, _ = series_files(())
    upload(client, coordinator, clean, django_capture_on_commit_callbacks)
    blanked, dismissed, rejected, held = series_ids
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("privacy-series-text-blank", args=[blanked])).status_code == 200
        assert client.post(reverse("privacy-series-text-dismiss", args=[dismissed])).status_code == 200
        assert client.post(reverse("privacy-series-text-reject", args=[rejected])).status_code == 200

    code = coordinator.institution.code
    text = client.get(reverse("privacy-site-summary", args=[code])).json()["pixel_text"]
    assert (text["checked"], text["with_text"]) == (5 * 5, 4 * len(TEXTED))
    assert (text["open"], text["blanked"], text["dismissed"], text["rejected"]) == (len(TEXTED),) * 4
    assert Series.objects.get(pk=held).status == "held_burned_in"
    pdf = " ".join(pdf_text(client.get(reverse("privacy-site-summary", args=[code]) + "?format=pdf").content).split())
    assert "Burned-in text in the pixels" in pdf and "held now" in pdf
