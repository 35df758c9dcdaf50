"""The CLMM with the reading session as a fixed effect (issue 14, item 4): a study read in two sessions, half of each
reader's images conventional first, with scores that rise in session 2 (readers grow milder) on top of the DL
effect. The fit recovers both and reports the session term; analyze_scores writes it to clmm.csv."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from apps.analysis.stats import run_analysis
from apps.analysis.stats.clmm import CLMM_COLUMNS, SESSION_COLUMNS, clmm_table
from apps.analysis.stats.planned import PlanSpec
from tests.analysis.synthetic import small_study

SESSION_SHIFT = 1.0  # score points added in session 2, whatever the version


def two_session_scores(shift: float = SESSION_SHIFT, seed: int = 5) -> pd.DataFrame:
    """small_study's design, each reader's images given conventional or DL first alternately (counterbalanced),
    scores redrawn with the DL effect plus ``shift`` in session 2."""
    scores, _, _ = small_study(patients_per_site=10, seed=seed)
    rng = np.random.default_rng(seed)
    first, taken = {}, {}
    for key in sorted(set(zip(scores["reader"], scores["sequence"], scores["patient_id"], strict=True))):
        n = taken[key[:2]] = taken.get(key[:2], -1) + 1  # alternately, within each reader and sequence
        first[(key[0], key[2], key[1])] = "conventional" if n % 2 else "dl"
    scores["session"] = [
        1 if first[(r, p, s)] == v else 2
        for r, p, s, v in zip(scores["reader"], scores["patient_id"], scores["sequence"], scores["version"],
                              strict=True)
    ]
    base = 3.0 + 0.9 * (scores["version"] == "dl") + shift * (scores["session"] == 2) - 0.5
    scores["score"] = np.clip(np.rint(base + rng.normal(0, 0.8, len(scores))), 1, 5).astype(int)
    return scores


def test_the_session_effect_is_estimated_next_to_the_version_effect():
    scores = two_session_scores()
    with_session = clmm_table(scores, session=True)
    plain = clmm_table(scores)
    assert list(with_session.columns[-3:]) == SESSION_COLUMNS and "coef_session" not in plain.columns
    assert with_session["converged"].all(), with_session["note"].tolist()
    for row in with_session.itertuples():
        # An ordinal shift of one score point at a latent SD of 0.8 is a log odds ratio of about 2 on the logit scale.
        assert 1.0 < row.coef_session < 4.0 and row.p_session < 1e-4, row
        assert row.se_session > 0 and 0.5 < row.coef_version_dl < 4.0, row
    # The term explains the data: the likelihood rises well beyond what one more parameter would give by chance.
    gain = with_session["loglik"] - plain["loglik"]
    assert (gain > 10).all(), gain.tolist()
    # No order effect in the data: the session term is small and not significant in most fits.
    null = clmm_table(two_session_scores(shift=0.0, seed=8), session=True)
    assert (null["coef_session"].abs() < 0.8).all() and (null["p_session"] > 0.01).mean() >= 0.75, null


def test_a_study_read_in_one_session_has_no_session_term_and_the_column_is_required():
    scores = two_session_scores()
    scores["session"] = 1
    table = clmm_table(scores, session=True)
    assert table["coef_session"].isna().all() and table["converged"].all()
    assert table["note"].str.contains("read in one session: no session effect").all()
    with pytest.raises(ValueError, match="needs a session column"):
        clmm_table(scores.drop(columns="session"), session=True)
    with pytest.raises(ValueError, match="session must be a whole number"):
        run_analysis(scores.assign(session="first"), session_effect=True)


def test_a_plan_naming_the_session_effect_gets_it_in_the_primary_clmm():
    scores = two_session_scores()
    spec = PlanSpec(sequences=("T2W",), items=("noise",), test="clmm", hypothesis="superiority", alpha=0.05,
                    multiplicity="holm", session_effect=True)
    result = run_analysis(scores, plan=spec)
    assert "coef_session" in result.clmm.columns and result.clmm["p_session"].lt(1e-4).all()
    row = result.clmm.set_index(["sequence", "item"]).loc[("T2W", "noise")]
    assert result.primary.iloc[0]["estimate"] == pytest.approx(row["coef_version_dl"])
    with pytest.raises(ValueError, match="a Wilcoxon plan cannot name it"):
        PlanSpec(sequences=("T2W",), items=("noise",), test="wilcoxon", hypothesis="superiority", alpha=0.05,
                 multiplicity="holm", session_effect=True)


def test_analyze_scores_takes_the_session_effect_and_writes_it_to_clmm_csv(tmp_path):
    scores = two_session_scores()
    path = tmp_path / "long.csv"
    scores.to_csv(path, index=False)
    call_command("analyze_scores", scores=path, out=tmp_path / "out", session_effect=True)
    written = pd.read_csv(tmp_path / "out" / "clmm.csv")
    assert list(written.columns) == [*CLMM_COLUMNS, *SESSION_COLUMNS]
    assert (written["coef_session"] > 1.0).all() and (written["p_session"] < 1e-4).all()
    call_command("analyze_scores", scores=path, out=tmp_path / "plain")
    assert list(pd.read_csv(tmp_path / "plain" / "clmm.csv").columns) == CLMM_COLUMNS
    assert not math.isnan(written["se_session"].iloc[0])


@pytest.mark.django_db
def test_the_locked_plan_can_name_the_session_effect_of_a_study_read_in_sessions():
    from apps.analysis import plan
    from tests.factories import ReaderStudyFactory

    values = {"primary_items": ["noise"], "primary_sequences": ["T2W"], "test": "clmm", "session_effect": True}
    one_session = ReaderStudyFactory(sequences=["T2W"])
    with pytest.raises(plan.PlanInvalid, match="read in one session, so there is no session effect to estimate"):
        plan.set_plan(one_session, values)
    study = ReaderStudyFactory(sequences=["T2W"], sessions=2, washout_days=14)
    with pytest.raises(plan.PlanInvalid, match="a term of the CLMM"):
        plan.set_plan(study, {**values, "test": "wilcoxon"})
    with pytest.raises(plan.PlanInvalid, match="true or false"):
        plan.set_plan(study, {**values, "session_effect": "yes"})
    plan.set_plan(study, values)
    plan.freeze_plan(study)
    locked = plan.locked_plan(study)
    assert locked.verified and locked.spec.session_effect is True and '"session_effect":true' in locked.canonical


@pytest.mark.django_db
def test_a_study_read_in_sessions_reports_the_session_effect_its_plan_names():
    """The real path: readers score a two-session study through the reading service, the study's report reads its
    long export (with the session column) and fits the planned CLMM with the session term."""
    from apps.analysis.report import render_html
    from apps.analysis.services import analyse_study
    from apps.studies.models import ReadingTask
    from apps.studies.services import reading
    from tests.studies.conftest import build_world

    plan = {"primary_items": ["noise"], "primary_sequences": ["T2W"], "test": "clmm", "session_effect": True}
    world = build_world(sequences=("T2W",), cases_per_site=6, sessions=2, washout_days=0, plan=plan,
                        readers_per_case=2)
    rng = np.random.default_rng(2)
    keys = list(world.study.items.values_list("key", flat=True))
    for task in ReadingTask.objects.filter(study=world.study).select_related("reader").order_by("session", "pk"):
        lift = (task.version == "dl") + (task.session == 2)
        scores = {key: int(np.clip(np.rint(2.5 + lift + rng.normal(0, 0.7)), 1, 5)) for key in keys}
        reading.submit(task.reader, reading.get_task(task.reader, task.token), {"A": scores}, 5)
    result, meta = analyse_study(world.study)
    assert meta.plan.spec.session_effect and list(result.clmm.columns[-3:]) == SESSION_COLUMNS
    fitted = result.clmm[result.clmm["converged"].astype(bool)]
    assert len(fitted) >= 5 and (fitted["coef_session"] > 0).all() and fitted["se_session"].gt(0).all(), fitted
    html = render_html(result, meta)
    assert "β (session 2)" in html and "ordered(score) ~ version + reader + session" in html
