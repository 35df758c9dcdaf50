"""A study's locked analysis plan: fixed by an admin while the study is a draft, frozen when the study opens.

Why here and not in ``apps.studies``: what a plan says (primary comparisons, test, hypothesis, margin, alpha,
multiplicity) is the analysis' vocabulary and only the analysis reads it; the study definition owns the moment it
is frozen, and calls ``freeze_plan`` from ``open_for_reading`` inside its transaction.

Freezing writes the plan's canonical JSON (keys sorted, no spaces, UTF-8; the plan's fields, the study's id and
title and the freezing time), its sha256 and the time. After that the plan is read-only everywhere (API, admin,
service): ``PlanLocked``. A plan cannot be made or changed once the study has opened either: a plan written after
reading began is not pre-specified.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from django.db import transaction

from apps.accounts.models import User
from apps.analysis.models import AnalysisPlan, PlanHypothesis, PlanTest
from apps.analysis.stats.planned import LockedPlan, PlanSpec
from apps.audit.timestamps import now
from apps.studies.models import ReaderStudy, StudyStatus

PLAN_FIELDS = ("primary_items", "primary_sequences", "test", "hypothesis", "margin", "alpha", "multiplicity",
               "session_effect")
FORMAT = "readerstudy analysis plan 1"


class PlanLocked(Exception):
    """The plan can no longer change: it was frozen when the study opened, or the study is no longer a draft."""


class PlanInvalid(ValueError):
    """The plan does not fit the study (an item or sequence the study does not have, a margin without
    non-inferiority, ...)."""


def canonical_json(content: dict) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _content(plan: AnalysisPlan, study: ReaderStudy, frozen_at: datetime) -> dict:
    return {
        "format": FORMAT,
        "study": {"id": study.pk, "title": study.title},
        **{name: getattr(plan, name) for name in PLAN_FIELDS},
        "frozen_at": frozen_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }


def validate(study: ReaderStudy, values: dict) -> dict:
    """The plan's values checked against the study; PlanInvalid with every reason otherwise."""
    problems = []
    items, sequences = values.get("primary_items"), values.get("primary_sequences")
    keys = list(study.items.values_list("key", flat=True))
    if not (isinstance(items, list) and items and all(isinstance(i, str) for i in items)):
        problems.append("name at least one primary item")
    else:
        unknown = [i for i in items if i not in keys]
        if unknown:
            problems.append(f"the study has no item {', '.join(unknown)} (its items: {', '.join(keys)})")
        if len(set(items)) != len(items):
            problems.append("an item is named twice")
    if not (isinstance(sequences, list) and sequences and all(isinstance(s, str) for s in sequences)):
        problems.append("name at least one primary sequence")
    else:
        unknown = [s for s in sequences if s not in study.sequences]
        if unknown:
            problems.append(f"the study reads no {', '.join(unknown)} (it reads {', '.join(study.sequences)})")
        if len(set(sequences)) != len(sequences):
            problems.append("a sequence is named twice")
    alpha, margin = values.get("alpha"), values.get("margin")
    if not (isinstance(alpha, int | float) and 0 < alpha < 0.5):
        problems.append("alpha lies between 0 and 0.5")
    if values.get("hypothesis") == PlanHypothesis.NON_INFERIORITY:
        if not (isinstance(margin, int | float) and margin > 0):
            problems.append("a non-inferiority plan needs a margin > 0")
    elif margin is not None:
        problems.append("a superiority plan has no margin: leave it empty")
    session_effect = values.get("session_effect", False)
    if not isinstance(session_effect, bool):
        problems.append("session_effect is true or false")
    elif session_effect and not study.in_sessions:
        problems.append("the study is read in one session, so there is no session effect to estimate")
    elif session_effect and values.get("test") != PlanTest.CLMM:
        problems.append("the session effect is a term of the CLMM: choose the CLMM test or leave it out")
    if problems:
        raise PlanInvalid("The analysis plan " + "; ".join(problems) + ".")
    return values


def require_changeable(study: ReaderStudy, plan: AnalysisPlan | None = None) -> None:
    """PlanLocked, saying why, once the plan is frozen or the study has opened (``plan``: the row already read)."""
    plan = plan or AnalysisPlan.objects.filter(study=study).first()
    if plan is not None and plan.is_frozen:
        raise PlanLocked(
            f"The analysis plan was locked when the study opened ({plan.frozen_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"sha256 {plan.sha256}): it cannot change. Analyses outside it are reported as exploratory."
        )
    if study.status != StudyStatus.DRAFT:
        raise PlanLocked(
            "The study has opened: a plan made or changed now would not be pre-specified. Analyses outside the "
            "locked plan are reported as exploratory."
        )


@transaction.atomic
def set_plan(study: ReaderStudy, values: dict, user: User | None = None, partial: bool = False) -> AnalysisPlan:
    """Create or change the draft study's plan (``partial``: only the given fields). PlanLocked once the plan is
    frozen or the study has opened; PlanInvalid when it does not fit the study."""
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    plan = AnalysisPlan.objects.select_for_update().filter(study=study).first()
    require_changeable(study, plan)
    unknown = set(values) - set(PLAN_FIELDS)
    if unknown:
        raise PlanInvalid(f"The analysis plan has no field {', '.join(sorted(unknown))}.")
    plan = plan or AnalysisPlan(study=study)
    current = {name: getattr(plan, name) for name in PLAN_FIELDS} if partial else {
        name: AnalysisPlan._meta.get_field(name).get_default() for name in PLAN_FIELDS
    }
    merged = validate(study, {**current, **values})
    for name, value in merged.items():
        setattr(plan, name, value)
    plan.updated_by = user
    plan.save()
    return plan


@transaction.atomic
def freeze_plan(study: ReaderStudy) -> AnalysisPlan | None:
    """Freeze the study's plan as the study opens (call inside the opening transaction): canonical JSON, sha256,
    time. No plan: nothing to freeze (the report then calls every analysis exploratory). A plan that no longer fits
    the study refuses the opening (PlanInvalid); one frozen already is left as it was."""
    plan = AnalysisPlan.objects.select_for_update().filter(study=study).first()
    if plan is None or plan.is_frozen:
        return plan
    validate(study, {name: getattr(plan, name) for name in PLAN_FIELDS})
    frozen_at = now()
    canonical = canonical_json(_content(plan, study, frozen_at))
    plan.frozen_at = frozen_at
    plan.frozen_json = canonical
    plan.sha256 = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    plan.save(update_fields=["frozen_at", "frozen_json", "sha256", "updated_at"])
    return plan


def locked_plan(study: ReaderStudy) -> LockedPlan | None:
    """The study's frozen plan, read back from its frozen JSON (what was hashed), or None."""
    plan = AnalysisPlan.objects.filter(study=study, frozen_at__isnull=False).first()
    if plan is None:
        return None
    return read_frozen(plan.frozen_json, plan.sha256)


def read_frozen(canonical: str, sha256: str | None = None) -> LockedPlan:
    """A frozen plan from its canonical JSON: a study's stored one, or one an admin saved from the plan API
    (``canonical_json``) to analyse score files with it (``analyze_scores --plan``). ``sha256`` is the hash stored
    with it (``LockedPlan.verified`` compares); without one, the JSON's own. ValueError, in words, for anything
    else than a frozen plan of this format."""
    try:
        frozen = json.loads(canonical)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the plan is not JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(frozen, dict) or frozen.get("format") != FORMAT:
        raise ValueError(f"the plan is not a frozen analysis plan (its \"format\" must be \"{FORMAT}\")")
    for key in ("primary_sequences", "primary_items"):
        if not (isinstance(frozen.get(key), list) and frozen[key] and all(isinstance(v, str) for v in frozen[key])):
            raise ValueError(f"the plan's {key} must be a list of names")
    try:
        spec = PlanSpec(
            sequences=tuple(frozen["primary_sequences"]),
            items=tuple(frozen["primary_items"]),
            test=frozen["test"],
            hypothesis=frozen["hypothesis"],
            alpha=frozen["alpha"],
            multiplicity=frozen["multiplicity"],
            margin=frozen["margin"],
            session_effect=frozen.get("session_effect", False),  # plans frozen before it existed had none
        )
        frozen_at = datetime.fromisoformat(frozen["frozen_at"])
    except KeyError as exc:
        raise ValueError(f"the plan has no {exc.args[0]}") from exc
    except TypeError as exc:
        raise ValueError(f"the plan has a value of the wrong kind: {exc}") from exc
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return LockedPlan(spec=spec, frozen_at=frozen_at, sha256=sha256 or digest, canonical=canonical)


def draft_plan_exists(study: ReaderStudy) -> bool:
    return AnalysisPlan.objects.filter(study=study, frozen_at__isnull=True).exists()
