"""Defining a study, generating and storing its assignment, locking it, exporting the assignment."""

from collections.abc import Iterable, Sequence
from dataclasses import asdict

from django.db import transaction
from django.db.models import Max

from apps.accounts.access import is_reader
from apps.accounts.models import User
from apps.audit.timestamps import now
from apps.enhancement_models.models import EnhancementModel
from apps.imaging.models import Case, Series, SeriesSource, SeriesStatus, Version
from apps.imaging.services import dl_versions
from apps.imaging.services.enhancement import held_dl_series
from apps.studies import assignment as planner
from apps.studies.models import (
    DEFAULT_ITEMS,
    DLSourceKind,
    Panel,
    ReaderStudy,
    ReadingMode,
    ReadingTask,
    StudyItem,
    StudyReader,
    StudyStatus,
    TaskPanel,
    TaskStatus,
)
from apps.studies.services import sources
from worker.enhance.context import check_factor


class StudyStateError(Exception):
    """The study's status forbids the change (for example regenerating after reading started)."""


class SourceLocked(StudyStateError):
    """The study's DL source can no longer change: reading has begun."""


class PairsNotReady(StudyStateError):
    """Images of the study have no readable DL version from its source yet; ``pending`` says which and why."""

    def __init__(self, message: str, pending: list[sources.PendingPair]) -> None:
        super().__init__(message)
        self.pending = pending


def create_study(title: str, **fields: object) -> ReaderStudy:
    """Creates a draft study with the paper's seven Likert items as its default items."""
    study = ReaderStudy(title=title, **fields)
    study.full_clean()
    with transaction.atomic():
        study.save()
        add_default_items(study)
    return study


def add_default_items(study: ReaderStudy) -> list[StudyItem]:
    """The seven Likert items of the paper, with its anchor wording."""
    return set_items(study, [{"key": k, "label": label, "anchors": list(a)} for k, label, a in DEFAULT_ITEMS])


def _require_draft(study: ReaderStudy, what: str) -> None:
    if study.status != StudyStatus.DRAFT:
        raise StudyStateError(f"{what} is only possible while the study is a draft.")


@transaction.atomic
def set_items(study: ReaderStudy, items: Sequence[dict]) -> list[StudyItem]:
    """Replaces the study's items (key, label, five anchors) in the given order; only before reading starts."""
    _require_draft(study, "Changing the items")
    if len({item["key"] for item in items}) != len(items) or not items:
        raise ValueError("Give at least one item, each with its own key.")
    study.items.all().delete()
    created = []
    for order, data in enumerate(items):
        item = StudyItem(study=study, key=data["key"], label=data["label"], anchors=list(data["anchors"]),
                         order=order)
        item.full_clean()
        item.save()
        created.append(item)
    return created


@transaction.atomic
def set_readers(study: ReaderStudy, readers: Iterable[User]) -> None:
    """Sets the study's readers; only users with the reader role and a site qualify."""
    _require_draft(study, "Changing the readers")
    readers = list(readers)
    wrong = [u.username for u in readers if not is_reader(u)]
    if wrong:
        raise ValueError(f"Not readers with a site: {', '.join(wrong)}.")
    study.memberships.exclude(reader__in=readers).delete()
    for reader in readers:
        StudyReader.objects.get_or_create(study=study, reader=reader)


@transaction.atomic
def set_cases(study: ReaderStudy, cases: Iterable[Case], calibration: Iterable[Case] = ()) -> None:
    """Sets the cases (and which of them are calibration cases) before the assignment is generated."""
    _require_draft(study, "Changing the cases")
    cases, calibration = list(cases), list(calibration)
    study.cases.set(set(cases) | set(calibration))
    study.calibration_cases.set(calibration)


def require_sessions_changeable(study: ReaderStudy) -> None:
    """StudyStateError once reading has begun: readers' sessions and washouts are running on the stored ones."""
    if reading_started(study):
        raise StudyStateError(
            f"The reading sessions of '{study.title}' cannot change once reading has begun (it is read in "
            f"{study.sessions} session{'s' if study.sessions > 1 else ''}"
            f"{f' with a washout of {study.washout_days} days' if study.in_sessions else ''}): readers' sessions "
            f"are running on them."
        )


def require_source_changeable(study: ReaderStudy) -> None:
    """SourceLocked, saying what the study reads, once reading has begun."""
    if reading_started(study):
        raise SourceLocked(
            f"The DL source of '{study.title}' cannot change once reading has begun (it reads "
            f"{sources.describe(study)}): the scores are about those images. Define a new study for another source."
        )


@transaction.atomic
def set_source(study: ReaderStudy, kind: str, model: EnhancementModel | None = None,
               factor: float | None = None) -> ReaderStudy:
    """Names the study's DL source: the deployment's default, a registered model (not retired) at a factor (empty:
    the deployment's), or the vendor series uploaded by the sites. SourceLocked once reading has begun (a task
    opened, or the study opened); ValueError for an incomplete choice."""
    locked = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    require_source_changeable(locked)
    if kind not in DLSourceKind.values:
        raise ValueError(f"The DL source is one of {', '.join(DLSourceKind.values)}.")
    if kind == DLSourceKind.VENDOR and (model is not None or factor is not None):
        raise ValueError("Vendor series come with no model or factor: leave both empty.")
    if kind == DLSourceKind.MODEL and model is None:
        raise ValueError("Choose the registered model whose DL versions this study reads.")
    if model is not None and model.retired:
        raise ValueError(f"Model {model} is retired: no new job runs it.")
    locked.dl_source, locked.dl_model = kind, model
    locked.dl_factor = None if factor is None else check_factor(factor)
    locked.save(update_fields=["dl_source", "dl_model", "dl_factor"])
    study.refresh_from_db()
    return study


def image_pairs(study: ReaderStudy, cases: Iterable[Case]) -> dict[tuple[int, str], dict[str, Series]]:
    """For each (case id, sequence) of the study: the ready conventional series and its ready DL version from the
    study's source (``sources.study_source``), never one of another model, factor or the vendor.

    A DL series whose residual check failed is left out until a coordinator or admin accepts it. A vendor-enhanced
    series is only ever the DL side, once linked (held until then).
    """
    source = sources.study_source(study)
    pairs: dict[tuple[int, str], dict[str, Series]] = {}
    dl_series = (
        Series.objects.filter(
            source.series_filter(), conventional__case__in=list(cases), conventional__sequence__in=study.sequences,
            conventional__version=Version.CONVENTIONAL,
            conventional__source=SeriesSource.UPLOADED,  # never a vendor's or the engine's output
            conventional__status=SeriesStatus.READY, version=Version.DL, status=SeriesStatus.READY,
        )
        .exclude(pk__in=held_dl_series())
        .select_related("conventional")
        .order_by("conventional_id", "pk")
    )
    for dl in dl_series:
        series = dl.conventional
        pairs.setdefault((series.case_id, series.sequence), {Version.CONVENTIONAL: series, Version.DL: dl})
    return pairs


def planner_rules(study: ReaderStudy) -> planner.Rules:
    return planner.Rules(
        mode=study.mode,
        readers_per_case=study.readers_per_case,
        cross_site=study.cross_site,
        min_distance=study.min_distance,
        calibration_cases=tuple(sorted(study.calibration_cases.values_list("code", flat=True))),
        sessions=study.sessions,
    )


def _stored_rules(batch: dict) -> planner.Rules:
    """The rules of one stored assignment batch (a batch stored before sessions existed was one session)."""
    return planner.Rules(**{**batch["rules"], "calibration_cases": tuple(batch["rules"]["calibration_cases"])})


def _planner_inputs(study: ReaderStudy, cases: Sequence[Case], pairs) -> tuple[list, list]:
    case_inputs = [
        planner.CaseInput(case.code, str(case.institution_id),
                          tuple(sorted(seq for (cid, seq) in pairs if cid == case.pk)))
        for case in cases
    ]
    reader_inputs = [
        planner.ReaderInput(str(m.reader_id), str(m.reader.institution_id))
        for m in study.memberships.select_related("reader")
    ]
    return case_inputs, reader_inputs


def _existing_plan(study: ReaderStudy) -> dict[str, list[planner.PlannedTask]]:
    plan: dict[str, list[planner.PlannedTask]] = {}
    for task in study.tasks.select_related("case").order_by("reader_id", "position"):
        plan.setdefault(str(task.reader_id), []).append(planned_task(task))
    return plan


def planned_task(task: ReadingTask) -> planner.PlannedTask:
    """The stored task as the planner's value, to compare with a re-derived assignment."""
    return planner.PlannedTask(
        task.case.code, task.sequence, task.calibration,
        version=task.version or None, left=task.left_version or None, right=task.right_version or None,
        session=task.session,
    )


def reading_started(study: ReaderStudy) -> bool:
    """The study is open (or locked), or a reader has opened one of its tasks."""
    return study.status != StudyStatus.DRAFT or study.tasks.exclude(status=TaskStatus.PENDING).exists()


@transaction.atomic
def generate(study: ReaderStudy) -> int:
    """(Re)generates the whole assignment of a draft study from its seed and stores it; returns the task count.

    Raises StudyStateError once reading has started and ValueError when the rules cannot be satisfied.
    """
    locked = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if reading_started(locked):
        raise StudyStateError("The assignment cannot be regenerated once reading has started.")
    locked.tasks.all().delete()
    locked.assignment_inputs = []
    count = _plan_and_store(locked, list(locked.cases.select_related("institution")))
    study.refresh_from_db()
    return count


def append_cases(study: ReaderStudy, cases: Iterable[Case]) -> int:
    """Adds cases to a study; once an assignment exists they are appended to it by the same rules, and then every
    image they bring needs its DL version from the study's source first (PairsNotReady, with the jobs queued)."""
    cases = list(cases)
    if study.assignment_generated_at and not study.is_locked:
        _require_pairs(study, cases, "The cases cannot be added yet")
    return _append_cases(study, cases)


@transaction.atomic
def _append_cases(study: ReaderStudy, cases: list[Case]) -> int:
    locked = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if locked.is_locked:
        raise StudyStateError("The study is locked.")
    locked.cases.add(*cases)
    count = 0
    if locked.assignment_generated_at:
        count = _plan_and_store(locked, list(locked.cases.select_related("institution")))
    study.refresh_from_db()
    return count


def _plan_and_store(study: ReaderStudy, cases: list[Case]) -> int:
    pairs = image_pairs(study, cases)
    case_inputs, reader_inputs = _planner_inputs(study, cases, pairs)
    rules = planner_rules(study)
    existing = _existing_plan(study)
    try:
        plan = planner.generate_assignment(study.seed, case_inputs, reader_inputs, rules, existing=existing)
    except planner.CalibrationTooShort as exc:  # the same reason, with the readers' names instead of their ids
        names = {str(m.reader_id): m.reader.pseudonym or m.reader.username
                 for m in study.memberships.select_related("reader")}
        raise ValueError(exc.describe(names)) from exc
    cases_by_code = {case.code: case for case in cases}
    last = dict(
        study.tasks.values("reader_id").annotate(last=Max("position")).values_list("reader_id", "last")
    )
    count = 0
    for reader_key, planned in plan.items():
        reader_id = int(reader_key)
        for offset, item in enumerate(planned, start=1):
            case = cases_by_code[item.case]
            _store_task(study, reader_id, last.get(reader_id, 0) + offset, case, item, pairs[(case.pk, item.sequence)])
            count += 1
    study.assignment_inputs = [*study.assignment_inputs, {
        "seed": study.seed,
        "rules": {**asdict(rules), "calibration_cases": list(rules.calibration_cases)},
        "cases": [[c.key, c.site, list(c.sequences)] for c in case_inputs],
        "readers": [[r.key, r.site] for r in reader_inputs],
    }]
    study.assignment_generated_at = now()
    study.save(update_fields=["assignment_inputs", "assignment_generated_at"])
    return count


def _store_task(study, reader_id: int, position: int, case: Case, item: planner.PlannedTask, pair) -> None:
    task = ReadingTask.objects.create(
        study=study, reader_id=reader_id, position=position, case=case, sequence=item.sequence,
        version=item.version or "", left_version=item.left or "", right_version=item.right or "",
        calibration=item.calibration, session=item.session,
    )
    shown = [item.version] if study.mode == ReadingMode.SINGLE else [item.left, item.right]
    for panel, version in zip(Panel.values, shown, strict=False):
        TaskPanel.objects.create(task=task, panel=panel, series=pair[version])


def rederive(study: ReaderStudy) -> dict[str, list[planner.PlannedTask]]:
    """Replays the stored assignment inputs through the pure planner: equals the stored tasks (invariant 5)."""
    plan: dict[str, list[planner.PlannedTask]] = {}
    for batch in study.assignment_inputs:
        rules = _stored_rules(batch)
        new = planner.generate_assignment(
            batch["seed"],
            [planner.CaseInput(k, s, tuple(q)) for k, s, q in batch["cases"]],
            [planner.ReaderInput(k, s) for k, s in batch["readers"]],
            rules,
            existing=plan,
        )
        for reader, tasks in new.items():
            plan[reader] = plan.get(reader, []) + tasks
    return plan


def _require_pairs(study: ReaderStudy, cases: Iterable[Case] | None, what: str) -> dl_versions.DLSource:
    """The study's source, once every image of ``cases`` (None: the study's) has its readable DL version from it;
    PairsNotReady naming what is missing otherwise, after queuing the jobs that make it (committed on their own,
    so that the refusal keeps them)."""
    try:
        source = sources.study_source(study)
        with transaction.atomic():
            pending = sources.missing_pairs(study, cases, source)
    except ValueError as exc:
        raise StudyStateError(f"{what}: {exc}") from exc
    if pending:
        raise PairsNotReady(f"{what}: {sources.describe_pending(pending, source)}", pending)
    return source


def _assignment_is_current(study: ReaderStudy) -> bool:
    """Every pair the study can read now is in its stored assignment, with the same two series, made under the
    study's rules as they are now (the reading sessions may have changed since it was generated)."""
    if not study.assignment_generated_at:
        return False
    if any(_stored_rules(batch) != planner_rules(study) for batch in study.assignment_inputs):
        return False
    pairs = image_pairs(study, study.cases.all())
    shown: dict[tuple[int, str], set[int]] = {}
    for task in study.tasks.prefetch_related("panels"):
        shown.setdefault((task.case_id, task.sequence), set()).update(p.series_id for p in task.panels.all())
    expected = {key: {pair[Version.CONVENTIONAL].pk, pair[Version.DL].pk} for key, pair in pairs.items()}
    return all(shown.get(key, set()) <= expected.get(key, set()) for key in shown) and set(expected) <= set(shown)


def open_for_reading(study: ReaderStudy) -> None:
    """Publishes the assignment to the readers; from now on it and the study's DL source are fixed.

    Every image of the study needs its DL version from the study's source, made, ready and past the residual
    check (or accepted): what is missing gets its job (queue ``gpu``) and the study is refused (PairsNotReady)
    with a reason naming each case and sequence still pending. The assignment is (re)generated from the seed
    when it is missing or was generated before some of those pairs existed. The default source is written into
    the study (model and factor) as it opens.
    """
    study.refresh_from_db()  # its source as stored, not as a caller's copy remembers it
    if study.status != StudyStatus.DRAFT:
        raise StudyStateError("Only a draft study can be opened for reading.")
    source = _require_pairs(study, None, "The study cannot open")
    if not _assignment_is_current(study):
        generate(study)
    with transaction.atomic():
        locked = ReaderStudy.objects.select_for_update().get(pk=study.pk)
        if locked.status != StudyStatus.DRAFT:
            raise StudyStateError("Only a draft study can be opened for reading.")
        if not locked.tasks.exists():
            raise StudyStateError("The assignment has no tasks: give the study cases and readers first.")
        held = locked.tasks.filter(panels__series__in=held_dl_series()).values_list("case__code", flat=True)
        if held.exists():
            raise StudyStateError(
                "DL series whose residual check failed are waiting for a coordinator or admin to accept them "
                f"(/imaging/enhancement/): cases {', '.join(sorted(set(held)))}."
            )
        sources.record_source(locked, source)
        from apps.analysis.plan import freeze_plan  # the analysis owns the plan; opening is when it freezes

        freeze_plan(locked)
        locked.status = StudyStatus.READING
        locked.save(update_fields=["status"])
    study.refresh_from_db()


def lock(study: ReaderStudy) -> None:
    """Ends reading: scores can no longer be changed."""
    if study.status != StudyStatus.READING:
        raise StudyStateError("Only a study that is being read can be locked.")
    study.status = StudyStatus.LOCKED
    study.save(update_fields=["status"])


ASSIGNMENT_COLUMNS = [
    "study", "reader", "reader_site", "position", "case", "case_site", "sequence", "version",
    "left_version", "right_version", "calibration", "conventional_series_uid", "dl_series_uid",
    "dl_source", "dl_model", "dl_model_sha256", "dl_factor", "session", "version_order",
]


def assignment_rows(study: ReaderStudy) -> list[dict[str, object]]:
    """The stored assignment, unblinded, one row per task (for admins' CSV/JSON exports)."""
    rows = []
    kind, model, sha256, factor = sources.export_fields(study)
    tasks = study.tasks.select_related("reader__institution", "case__institution").prefetch_related("panels__series")
    orders = version_orders(study)
    for task in tasks.order_by("reader__username", "position"):
        series = {p.series.version: p.series.series_uid for p in task.panels.all()}
        rows.append({
            "study": study.pk,
            "reader": task.reader.pseudonym or task.reader.username,
            "reader_site": task.reader.institution.pseudonym,
            "position": task.position,
            "case": task.case.code,
            "case_site": task.case.institution.pseudonym,
            "sequence": task.sequence,
            "version": task.version,
            "left_version": task.left_version,
            "right_version": task.right_version,
            "calibration": task.calibration,
            "conventional_series_uid": series.get(Version.CONVENTIONAL, ""),
            "dl_series_uid": series.get(Version.DL, ""),
            "dl_source": kind,
            "dl_model": model,
            "dl_model_sha256": sha256,
            "dl_factor": factor,
            "session": task.session,
            "version_order": orders.get((task.reader_id, task.case_id, task.sequence), ""),
        })
    return rows


def version_orders(study: ReaderStudy) -> dict[tuple[int, int, str], str]:
    """Single mode: per (reader id, case id, sequence), which version the reader was given first
    (``conventional_first`` or ``dl_first``), by session and then position; paired mode: none (both at once)."""
    if study.mode != ReadingMode.SINGLE:
        return {}
    orders: dict[tuple[int, int, str], str] = {}
    for reader_id, case_id, sequence, version in study.tasks.order_by("session", "position").values_list(
        "reader_id", "case_id", "sequence", "version"
    ):
        orders.setdefault((reader_id, case_id, sequence), f"{version}_first")
    return orders
