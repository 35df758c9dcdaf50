"""A locked analysis plan (issue 14, item 3): set through the API while the study is a draft, frozen (canonical
JSON, sha256, time) when the study opens, refused afterwards, and shown in the report with its hash and time, the
primary analysis in Table 7 and every other analysis marked exploratory."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import replace
from html import unescape

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader
from scipy import stats

from apps.analysis.models import AnalysisPlan
from apps.analysis.stats.paired import holm
from apps.analysis.stats.planned import PlanSpec, primary_analysis
from apps.studies.models import ReaderStudy, StudyStatus
from apps.studies.services import definition
from tests.analysis.test_report_study import section, text_of
from tests.analysis.world import build_world, read
from tests.factories import AdminFactory, ReaderStudyFactory

PLAN = {
    "primary_items": ["overall_quality", "noise"],
    "primary_sequences": ["T2W"],
    "test": "wilcoxon",
    "hypothesis": "superiority",
    "alpha": 0.05,
    "multiplicity": "holm",
}


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


def draft_study(world) -> ReaderStudy:
    """A second study over the world's images and readers, generated but still a draft."""
    study = ReaderStudyFactory(title="Planned study", sequences=["T2W", "FLAIR"], readers_per_case=2)
    definition.set_readers(study, world.readers)
    definition.set_cases(study, world.cases)
    definition.generate(study)
    return study


def plan_url(study) -> str:
    return f"/api/analysis/studies/{study.pk}/plan/"


def send(client, method: str, url: str, body: dict):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def rows_of(html: str, key: str) -> list[list[str]]:
    match = re.search(rf'<section id="{key}">(.*?)</section>', html, re.S)
    body = re.search(r"<tbody>(.*?)</tbody>", match.group(1), re.S).group(1)
    return [[text_of(c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


@pytest.mark.django_db
def test_the_plan_locks_when_the_study_opens_and_the_report_shows_it(admin_client) -> None:
    world = build_world(cases_per_site=2, sequences=("T2W", "FLAIR"), readers_per_case=2)
    study = draft_study(world)

    made = send(admin_client, "put", plan_url(study), PLAN)
    assert made.status_code == 200, made.content
    assert made.json()["locked"] is False and made.json()["sha256"] == "" and made.json()["canonical_json"] == ""
    changed = send(admin_client, "patch", plan_url(study), {"alpha": 0.025})
    assert changed.status_code == 200 and changed.json()["alpha"] == 0.025
    assert changed.json()["primary_items"] == PLAN["primary_items"]  # PATCH keeps what it does not name

    opened = admin_client.post(f"/api/reading/studies/{study.pk}/open/")
    assert opened.status_code == 200, opened.content
    plan = admin_client.get(plan_url(study)).json()
    assert plan["locked"] is True and plan["frozen_at"]
    canonical = plan["canonical_json"]
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == plan["sha256"]
    frozen = json.loads(canonical)
    assert frozen["alpha"] == 0.025 and frozen["primary_items"] == PLAN["primary_items"]
    assert frozen["study"] == {"id": study.pk, "title": "Planned study"}
    assert canonical == json.dumps(frozen, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    for method, body in (("patch", {"alpha": 0.01}), ("put", {**PLAN, "test": "clmm"}), ("patch", {})):
        refused = send(admin_client, method, plan_url(study), body)
        assert refused.status_code == 409, refused.content
        assert "locked when the study opened" in refused.json()["detail"] and plan["sha256"] in refused.json()["detail"]
    row = AnalysisPlan.objects.get(study=study)
    assert (row.alpha, row.test, row.sha256, row.frozen_json) == (0.025, "wilcoxon", plan["sha256"], canonical)

    read(replace(world, study=study))
    html = admin_client.get(f"/analysis/studies/{study.pk}/report/").content.decode("utf-8")
    shown = section(html, "plan")
    assert plan["sha256"] in shown and "Analysis plan: locked " in shown
    assert row.frozen_at.strftime("%Y-%m-%d %H:%M:%S") in shown and "it matches the stored plan" in shown
    assert canonical in unescape(re.search(r'<section id="plan">(.*?)</section>', html, re.S).group(1))

    primary = rows_of(html, "primary")
    assert [(r[0], r[1], r[2]) for r in primary] == [
        ("T2W", "Overall image quality", "Wilcoxon signed-rank"),
        ("T2W", "Noise", "Wilcoxon signed-rank"),
    ]
    assert all(r[-1] in {"DL superior", "DL inferior", "no difference shown"} for r in primary)
    paired = {(r[0], r[1]): r[-1] for r in rows_of(html, "paired")}
    assert paired[("T2W", "Overall image quality")] == paired[("T2W", "Noise")] == "primary"
    assert paired[("T2 FLAIR", "Noise")] == paired[("T2W", "Motion artifact")] == "exploratory"
    assert {r[-1] for r in rows_of(html, "clmm")} == {"exploratory"}  # the plan's test is Wilcoxon
    assert "Exploratory: outside the locked analysis plan." in section(html, "agreement")
    assert "Exploratory: the locked analysis plan's test is the Wilcoxon" in section(html, "table3")
    assert "Holm-adjusted across the 2 comparisons" in section(html, "paired")

    pdf = admin_client.get(f"/analysis/studies/{study.pk}/report.pdf").content
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    assert plan["sha256"] in text.replace(" ", "") and "Table 7. Primary analysis of the locked analysis plan" in text
    assert list(dict.fromkeys(int(n) for n in re.findall(r"Table (\d)\. ", text))) == [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.django_db
def test_no_plan_can_be_made_once_the_study_is_open(admin_client) -> None:
    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)
    refused = send(admin_client, "put", plan_url(world.study), {**PLAN, "primary_sequences": ["T2W"]})
    assert refused.status_code == 409 and "would not be pre-specified" in refused.json()["detail"]
    assert not AnalysisPlan.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"primary_items": ["sharpness"]}, "the study has no item sharpness"),
        ({"primary_sequences": ["T1W_POST"]}, "the study reads no T1W_POST"),
        ({"hypothesis": "non_inferiority"}, "needs a margin > 0"),
        ({"hypothesis": "non_inferiority", "margin": -0.5}, "needs a margin > 0"),
        ({"margin": 0.5}, "a superiority plan has no margin"),
        ({"alpha": 0.7}, "alpha lies between 0 and 0.5"),
        ({"primary_items": []}, "primary_items"),
        ({"test": "t-test"}, "test"),
    ],
)
def test_a_plan_that_does_not_fit_the_study_answers_400_and_stores_nothing(admin_client, change, words) -> None:
    study = ReaderStudyFactory(sequences=["T2W", "FLAIR"])
    response = send(admin_client, "put", plan_url(study), {**PLAN, **change})
    assert response.status_code == 400
    assert words in json.dumps(response.json())
    assert not AnalysisPlan.objects.exists()


@pytest.mark.django_db
def test_a_non_inferiority_plan_is_accepted_with_its_margin(admin_client) -> None:
    study = ReaderStudyFactory(sequences=["T2W"])
    body = {**PLAN, "test": "clmm", "hypothesis": "non_inferiority", "margin": 0.4}
    response = send(admin_client, "put", plan_url(study), body)
    assert response.status_code == 200 and response.json()["margin"] == 0.4
    assert admin_client.get(plan_url(ReaderStudyFactory())).status_code == 404


@pytest.mark.django_db
def test_opening_is_refused_when_the_plan_no_longer_fits_and_nothing_freezes(admin_client) -> None:
    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)
    study = draft_study(world)
    assert send(admin_client, "put", plan_url(study), PLAN).status_code == 200
    definition.set_items(study, [{"key": "overall_quality", "label": "Overall", "anchors": list("12345")}])
    refused = admin_client.post(f"/api/reading/studies/{study.pk}/open/")
    assert refused.status_code == 400 and "the study has no item noise" in refused.json()["detail"]
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT and not AnalysisPlan.objects.get(study=study).is_frozen


@pytest.mark.django_db
def test_only_admins_read_or_write_the_plan(client) -> None:
    from tests.factories import ReaderFactory

    study = ReaderStudyFactory(sequences=["T2W"])
    client.force_login(ReaderFactory())
    assert send(client, "put", plan_url(study), PLAN).status_code == 403
    assert client.get(plan_url(study)).status_code == 403


@pytest.mark.django_db
def test_the_admin_shows_a_locked_plan_read_only(admin_client) -> None:
    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)
    study = draft_study(world)
    assert send(admin_client, "put", plan_url(study), {**PLAN, "primary_sequences": ["T2W"]}).status_code == 200
    plan = AnalysisPlan.objects.get(study=study)
    url = f"/admin/analysis/analysisplan/{plan.pk}/change/"
    editable = admin_client.get(url).content.decode()
    assert 'name="alpha"' in editable
    definition.open_for_reading(study)
    page = admin_client.get(url).content.decode()
    assert 'name="alpha"' not in page and plan.__class__.objects.get().sha256 in page
    posted = admin_client.post(url, {"alpha": "0.01"})
    assert posted.status_code == 403
    assert AnalysisPlan.objects.get().alpha == 0.05


@pytest.mark.django_db
def test_a_report_without_a_locked_plan_calls_everything_exploratory(admin_client) -> None:
    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)
    read(world)
    html = admin_client.get(f"/analysis/studies/{world.study.pk}/report/").content.decode("utf-8")
    assert "no analysis plan was locked before the study opened. Every analysis in this report is exploratory." in (
        section(html, "plan")
    )
    assert "Not computed: no analysis plan was locked" in section(html, "primary")
    assert "exploratory" not in section(html, "paired").replace("Every analysis in this report is exploratory", "")


# --- the primary analysis itself, without the database -----------------------------------------------------------


def _scores(gain: float, cases: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(cases):
        base = rng.integers(2, 5)
        for version, shift in (("conventional", 0.0), ("dl", gain)):
            score = int(np.clip(base + shift + rng.normal(0, 0.7), 1, 5).round())
            rows.append((f"C{k}", f"P{k}", "ABC"[k % 3], "R1", "T2W", version, "noise", score))
    return pd.DataFrame(rows, columns=["case_id", "patient_id", "site", "reader", "sequence", "version", "item",
                                       "score"])


def test_wilcoxon_non_inferiority_is_the_signed_rank_test_of_the_shifted_differences() -> None:
    """R: wilcox.test(dl, conventional, paired = TRUE, mu = -margin, alternative = "greater", exact = FALSE)."""
    scores = _scores(gain=-0.2)
    spec = PlanSpec(("T2W",), ("noise",), "wilcoxon", "non_inferiority", 0.05, "holm", margin=0.5)
    row = primary_analysis(scores, pd.DataFrame(), spec).iloc[0]
    wide = scores.pivot_table(index="case_id", columns="version", values="score")
    d = (wide["dl"] - wide["conventional"]).to_numpy() + 0.5
    nz = d[d != 0]
    r = stats.rankdata(np.abs(nz))
    v, n = r[nz > 0].sum(), nz.size
    _, ties = np.unique(r, return_counts=True)
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - (ties**3 - ties).sum() / 48)
    z = (v - n * (n + 1) / 4 - 0.5) / sigma
    assert row["p"] == pytest.approx(stats.norm.sf(z), rel=1e-12)
    assert row["p_adjusted"] == row["p"]  # a family of one
    assert row["decision"] == ("DL non-inferior" if row["p"] < 0.05 else "non-inferiority not shown")


def test_clmm_non_inferiority_is_the_one_sided_wald_test_beyond_the_margin() -> None:
    clmm = pd.DataFrame({"sequence": ["T2W", "T2W"], "item": ["noise", "motion"], "coef_version_dl": [-0.1, 0.8],
                         "se": [0.2, 0.25], "p": [0.6, 0.001]})
    spec = PlanSpec(("T2W",), ("noise", "motion"), "clmm", "non_inferiority", 0.025, "holm", margin=0.5)
    table = primary_analysis(pd.DataFrame(), clmm, spec).set_index("item")
    assert table.loc["noise", "p"] == pytest.approx(stats.norm.sf(0.4 / 0.2))
    assert table.loc["motion", "p"] == pytest.approx(stats.norm.sf(1.3 / 0.25))
    np.testing.assert_allclose(table["p_adjusted"], holm(table["p"]))
    assert table.loc["motion", "decision"] == "DL non-inferior"


def test_superiority_says_which_way_and_none_adjusts_nothing() -> None:
    clmm = pd.DataFrame({"sequence": ["T2W"] * 3, "item": ["a", "b", "c"], "coef_version_dl": [1.0, -1.0, 0.1],
                         "se": [0.2, 0.2, 0.2], "p": [1e-6, 1e-6, 0.6]})
    spec = PlanSpec(("T2W",), ("a", "b", "c"), "clmm", "superiority", 0.05, "none")
    table = primary_analysis(pd.DataFrame(), clmm, spec)
    assert table["decision"].tolist() == ["DL superior", "DL inferior", "no difference shown"]
    assert table["p_adjusted"].tolist() == table["p"].tolist()


@pytest.mark.parametrize(
    "kwargs",
    [{"hypothesis": "non_inferiority"}, {"margin": 0.3}, {"alpha": 0}, {"test": "t"}, {"multiplicity": "bonferroni"}],
)
def test_a_plan_spec_refuses_what_makes_no_sense(kwargs) -> None:
    base = {"sequences": ("T2W",), "items": ("noise",), "test": "clmm", "hypothesis": "superiority", "alpha": 0.05,
            "multiplicity": "holm"}
    with pytest.raises(ValueError):
        PlanSpec(**{**base, **kwargs})


@pytest.mark.django_db
def test_every_change_of_a_draft_plan_is_in_the_audit_trail_with_its_author(client) -> None:
    from auditlog.models import LogEntry

    admin = AdminFactory()
    client.force_login(admin)
    study = ReaderStudyFactory(sequences=["T2W"])
    assert send(client, "put", plan_url(study), PLAN).status_code == 200
    assert send(client, "patch", plan_url(study), {"alpha": 0.01}).status_code == 200
    plan = AnalysisPlan.objects.get(study=study)
    entries = list(LogEntry.objects.get_for_object(plan).order_by("timestamp"))
    assert [entry.action for entry in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    assert all(entry.actor == admin for entry in entries)
    assert entries[-1].changes_dict["alpha"] == ["0.05", "0.01"]


@pytest.mark.django_db
def test_analyze_scores_with_the_saved_plan_gives_the_study_reports_primary_analysis(admin_client, tmp_path) -> None:
    from django.core.management import CommandError, call_command

    from apps.analysis import services

    world = build_world(cases_per_site=2, sequences=("T2W", "FLAIR"), readers_per_case=2)
    study = draft_study(world)
    assert send(admin_client, "put", plan_url(study), PLAN).status_code == 200
    assert admin_client.post(f"/api/reading/studies/{study.pk}/open/").status_code == 200
    read(replace(world, study=study))
    canonical = admin_client.get(plan_url(study)).json()["canonical_json"]
    (tmp_path / "plan.json").write_text(canonical, encoding="utf-8")
    long = admin_client.get(f"/api/analysis/studies/{study.pk}/exports/long/")
    (tmp_path / "long.csv").write_bytes(b"".join(long.streaming_content) if long.streaming else long.content)

    call_command("analyze_scores", f"--scores={tmp_path / 'long.csv'}", f"--plan={tmp_path / 'plan.json'}",
                 f"--out={tmp_path / 'out'}")
    from_files = pd.read_csv(tmp_path / "out" / "primary.csv")
    result, meta = services.analyse_study(study)
    assert meta.plan.sha256 == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    pd.testing.assert_frame_equal(from_files, result.primary.reset_index(drop=True), check_dtype=False)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert meta.plan.sha256 in html and "Table 7. Primary analysis of the locked analysis plan" in html

    (tmp_path / "draft.json").write_text(json.dumps(PLAN), encoding="utf-8")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    for name, words in (("draft.json", "not a frozen analysis plan"), ("bad.json", "not JSON"),
                        ("missing.json", "cannot be read")):
        with pytest.raises(CommandError, match=words):
            call_command("analyze_scores", f"--scores={tmp_path / 'long.csv'}", f"--plan={tmp_path / name}",
                         f"--out={tmp_path / 'refused'}")
