"""A power analysis through the admin's page and the API: form -> background job -> stored curves -> what the admin
sees (the numbers of the curves); bad settings refused with the reason and nothing stored; the report's Fig. 3."""

from __future__ import annotations

import io
import re
from html import unescape

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from apps.analysis import power
from apps.analysis.models import AnalysisPlan, PowerAnalysisJob
from apps.jobs.models import JobStatus
from tests.analysis.conftest import require_reference_data
from tests.analysis.world import build_world, read
from tests.factories import AdminFactory, ReaderFactory
from worker.power import run_power_analysis

pytestmark = pytest.mark.django_db

SETTINGS = {
    "sequences": "T2W", "items": "overall_quality", "test": "wilcoxon", "hypothesis": "superiority", "margin": "",
    "alpha": "0.05", "multiplicity": "holm", "cases": "10, 30", "readers": "2, 4", "readers_per_case": "2",
    "modes": ["single", "paired"], "n_sites": "3", "n_studies": "200", "effect": "1.5", "seed": "7",
}


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


@pytest.fixture
def world():
    """Six cases at three sites, T2W only, two readers each, read by every reader: DL scored higher."""
    world = build_world(cases_per_site=2, sequences=("T2W",), slices=1, readers_per_case=2)
    read(world)
    return world


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_the_page_starts_a_job_whose_curves_the_admin_sees(admin_client, world, django_capture_on_commit_callbacks):
    form = admin_client.get(f"/analysis/studies/{world.study.pk}/power/")
    assert form.status_code == 200 and 'name="cases"' in form.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/analysis/studies/{world.study.pk}/power/", SETTINGS)
    job = PowerAnalysisJob.objects.get(study=world.study)
    assert response.status_code == 302 and response["Location"] == f"/analysis/power/{job.pk}/"
    assert job.status == JobStatus.DONE and job.progress == 1.0 and job.designs == job.designs_done == 8
    rows = job.result["power"]
    assert [(r["mode"], r["n_readers"], r["n_cases"]) for r in rows][:4] == [
        ("single", 2, 10), ("single", 2, 30), ("single", 4, 10), ("single", 4, 30)]
    for r in rows:
        assert r["n_studies"] == 200 and r["power"] == r["rejections"] / 200
        assert r["mc_se"] == pytest.approx((r["power"] * (1 - r["power"]) / 200) ** 0.5)
    assert all(b["power"] >= a["power"] for a, b in zip(rows[::2], rows[1::2], strict=True)), "30 cases beat 10"
    assert job.result["pilot"][0]["sequence"] == "T2W" and job.result["pilot"][0]["n_cases"] == 6

    page = admin_client.get(f"/analysis/power/{job.pk}/").content.decode()
    assert 'id="power-curves" src="data:image/png;base64,' in page
    table = text_of(re.search(r'<table id="power-table">(.*?)</table>', page, re.S).group(1))
    for r in rows:
        assert f"{r['mode']} 2 {r['n_readers']} {r['n_cases']} 200 {r['power']:.3f} {r['mc_se']:.3f}" in table
    assert "under a DL effect of 1.5 (log odds ratio); 200 simulated studies per design" in text_of(page)

    polled = admin_client.get(f"/analysis/power/{job.pk}/", HTTP_ACCEPT="application/json").json()
    api = admin_client.get(f"/api/analysis/power-analyses/{job.pk}/").json()
    assert polled["power"] == api["power"] == rows and api["status"] == "done"

    run_power_analysis.delay(job_id=job.pk)  # a re-delivered message leaves the finished job as it was
    job.refresh_from_db()
    assert job.result["power"] == rows and PowerAnalysisJob.objects.count() == 1


BAD = [
    ({"cases": "-10, 30"}, "cases must lie between 3 and 2000 (given -10 to 30)"),
    ({"cases": ", ".join(str(c) for c in range(10, 100, 2)), "readers": "2, 3, 4"}, "270 designs; at most 60"),
    ({"n_studies": "999999"}, "between 10 and 5000 for the wilcoxon test"),
    ({"items": "no_such_item"}, "the pilot has no scores of T2W no_such_item"),
    ({"test": "clmm", "n_studies": "200", "cases": "10,20,30,40,50", "readers": "2,3,4"},
     "30 designs x 200 studies x 1 comparisons = 6000 CLMM fits; at most 4000"),
    ({"hypothesis": "non_inferiority"}, "a non-inferiority test needs a margin between 0 and 10"),
    ({"effect": "large"}, "the effect is 'pilot' or a log odds ratio"),
]


def test_bad_settings_are_refused_with_the_reason_and_nothing_is_stored(admin_client, world):
    for changes, reason in BAD:
        response = admin_client.post(f"/analysis/studies/{world.study.pk}/power/", {**SETTINGS, **changes})
        assert response.status_code == 400, changes
        page = text_of(response.content.decode())
        assert reason in page, (reason, page[:2000])
        assert f'value="{changes.get("cases", SETTINGS["cases"])}"' in response.content.decode(), "input kept"
        api = admin_client.post(f"/api/analysis/studies/{world.study.pk}/power-analyses/",
                                {**SETTINGS, **changes}, content_type="application/json")
        assert api.status_code == 400 and reason in api.json()["detail"], (reason, api.content)
    for body in ([1, 2], '"cases"'):
        api = admin_client.post(f"/api/analysis/studies/{world.study.pk}/power-analyses/", body,
                                content_type="application/json")
        assert api.status_code == 400 and "must be an object" in api.json()["detail"]
    assert not PowerAnalysisJob.objects.exists()


def test_the_api_starts_a_job_and_readers_may_not(client, admin_client, world, django_capture_on_commit_callbacks):
    body = {**SETTINGS, "cases": [12], "readers": [3], "modes": ["paired"], "n_studies": 50, "effect": None}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/api/analysis/studies/{world.study.pk}/power-analyses/", body,
                                     content_type="application/json")
    assert response.status_code == 202
    detail = admin_client.get(f"/api/analysis/power-analyses/{response.json()['id']}/").json()
    assert detail["status"] == "done" and len(detail["power"]) == 1 and detail["parameters"]["effect"] is None
    client.force_login(ReaderFactory())
    assert client.post(f"/api/analysis/studies/{world.study.pk}/power-analyses/", body,
                       content_type="application/json").status_code == 403
    assert client.get(f"/analysis/studies/{world.study.pk}/power/").status_code == 403


def test_the_report_draws_the_study_as_pilot(admin_client, world):
    html = admin_client.get(f"/analysis/studies/{world.study.pk}/report/").content.decode()
    text = text_of(html)
    assert "Fig. 3. Power of a larger study with this study as pilot: Wilcoxon signed-rank test (superiority" in text
    assert "of T2W overall_quality, under the pilot's DL effect; 200 simulated studies per design" in text
    assert html.count('src="data:image/png;base64,') == 3


def test_a_study_too_small_for_a_pilot_gets_a_report_that_says_why(admin_client):
    world = build_world(cases_per_site=2, sequences=("T2W",), slices=1, readers_per_case=2)
    read(world, readers=world.readers[:1])  # one reader, who reads the other two sites only: 2 sites for the CLMM
    text = text_of(admin_client.get(f"/analysis/studies/{world.study.pk}/report/").content.decode())
    assert "Fig. 3." not in text
    assert ("Power: not computed. The pilot cannot be used: T2W overall_quality: the pilot's CLMM gives no estimate "
            "(4 patient(s) and 2 site(s); clmm needs at least 3 of each)." in text)


def test_the_command_writes_the_curves_from_a_csv_and_refuses_bad_grids(tmp_path):
    scores = require_reference_data() / "scores.csv"
    call_command("power_analysis", scores=scores, out=tmp_path, sequences="T2W", items="overall_quality",
                 cases="10,40", readers="3", modes="single,paired", studies="100", effect="0.8", seed="3",
                 stdout=io.StringIO(), stderr=io.StringIO())
    table = pd.read_csv(tmp_path / "power.csv")
    assert list(zip(table["mode"], table["n_cases"], strict=True)) == [
        ("single", 10), ("single", 40), ("paired", 10), ("paired", 40)]
    assert (table["power"] == table["rejections"] / 100).all() and (table["n_studies"] == 100).all()
    pilot = pd.read_csv(tmp_path / "pilot.csv")
    assert pilot.loc[0, "dl_effect"] == pytest.approx(0.9958, abs=0.02), "R's clmm estimate of the reference data"
    assert (tmp_path / "power.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(CommandError, match="readers must lie between 1 and 50"):
        call_command("power_analysis", scores=scores, out=tmp_path, sequences="T2W", items="overall_quality",
                     readers="0", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_failed_job_shows_why_and_a_retry_runs_it(admin_client, world, monkeypatch,
                                                     django_capture_on_commit_callbacks):
    real_run = power.run
    monkeypatch.setattr(power, "run", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError), django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/analysis/studies/{world.study.pk}/power/", {**SETTINGS, "cases": "10"})
    job = PowerAnalysisJob.objects.get()
    assert job.status == JobStatus.FAILED and job.result is None
    page = text_of(admin_client.get(f"/analysis/power/{job.pk}/").content.decode())
    assert "Failed" in page and "ZeroDivisionError: division by zero" in page and "Retry" in page

    monkeypatch.setattr(power, "run", real_run)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/analysis/power/{job.pk}/retry/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and len(job.result["power"]) == 4 and job.attempts == 2
    page = text_of(admin_client.get(f"/analysis/power/{job.pk}/").content.decode())
    assert "Retry" not in page and "was queued again" in page
    refused = admin_client.post(f"/api/analysis/power-analyses/{job.pk}/retry/")
    assert refused.status_code == 409 and refused.json()["detail"], "a finished job is not queued again"


def test_the_api_retries_a_failed_job(admin_client, world, monkeypatch, django_capture_on_commit_callbacks):
    real_run = power.run
    monkeypatch.setattr(power, "run", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError), django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/api/analysis/studies/{world.study.pk}/power-analyses/", {**SETTINGS, "cases": "10"},
                          content_type="application/json")
    job = PowerAnalysisJob.objects.get()
    assert job.status == JobStatus.FAILED
    monkeypatch.setattr(power, "run", real_run)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/api/analysis/power-analyses/{job.pk}/retry/")
    assert response.status_code == 202, response.content
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and len(job.result["power"]) == 4 and job.attempts == 2
    assert admin_client.get(f"/api/analysis/power-analyses/{job.pk}/").json()["status"] == "done"
    assert admin_client.post("/api/analysis/power-analyses/999999/retry/").status_code == 404


def test_the_form_starts_from_the_studys_plan(admin_client, world):
    AnalysisPlan.objects.create(study=world.study, primary_items=["noise", "overall_quality"],
                                primary_sequences=["T2W"], test="clmm", hypothesis="non_inferiority", margin=0.5,
                                alpha=0.025, multiplicity="holm")
    html = admin_client.get(f"/analysis/studies/{world.study.pk}/power/").content.decode()
    assert 'name="items" value="noise, overall_quality"' in html
    assert '<option value="clmm" selected>' in html and '<option value="non_inferiority" selected>' in html
    assert 'name="margin" value="0.5"' in html and 'name="alpha" value="0.025"' in html
    assert 'name="n_studies" value="50"' in html, "CLMM simulations are bounded"
