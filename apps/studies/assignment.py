"""Reading-task assignment as a pure function of (seed, cases, readers, rules).

No Django and no database here: the study service feeds plain values in and stores what comes out, so the
assignment of a study can be re-derived from its stored inputs at any time (design invariant 5). Every call
owns its `random.Random`; the global random state is never touched.

Vocabulary: an *image* is one (case, sequence); it exists in two versions. In single mode each version is its
own task and the two tasks of one image are kept at least `min_distance` positions apart in a reader's order
(distance 1 means adjacent); in paired mode one task shows both versions side by side, left/right randomised.

Reading in two sessions (single mode, `Rules.sessions == 2`): each reader's images are split per sequence so that
half of them (to one image, per sequence and overall) show the conventional version in session 1 and the DL
version in session 2, the other half the reverse; each session is in its own random order. Their two versions are
then a whole session (and a washout) apart, so `min_distance` applies only within calibration. Calibration is read
in session 1. A study read in sessions takes no appended batch: its new images would fall after session 2.

Calibration cases are read first, by every eligible reader, each in their own random order (the paper's
calibration session before formal review; readers see them flagged and compare scores afterwards; they are
excluded from analysis). Their two versions keep the same `min_distance` inside that first block, so a reader
needs at least `min_distance` calibration images; fewer is refused (`CalibrationTooShort`), never shortened.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

VERSIONS = ("conventional", "dl")
MODES = ("single", "paired")


class CaseInput(NamedTuple):
    """A case offered to the study: its key, its site and the sequences it has in both versions."""

    key: str
    site: str
    sequences: tuple[str, ...]


class ReaderInput(NamedTuple):
    key: str
    site: str


@dataclass(frozen=True)
class Rules:
    mode: str = "single"
    readers_per_case: int = 2
    cross_site: bool = True
    min_distance: int = 1
    calibration_cases: tuple[str, ...] = field(default_factory=tuple)
    sessions: int = 1

    def check(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Unknown reading mode {self.mode!r}; expected one of {', '.join(MODES)}.")
        if self.sessions not in (1, 2):
            raise ValueError(f"A study is read in 1 or 2 sessions, not {self.sessions}.")
        if self.sessions == 2 and self.mode != "single":
            raise ValueError("Only single mode is read in sessions: paired mode shows both versions in one task.")
        if self.readers_per_case < 1:
            raise ValueError("Each case needs at least one reader (readers_per_case >= 1).")
        if self.min_distance < 1:
            raise ValueError("min_distance counts positions and must be at least 1.")


class PlannedTask(NamedTuple):
    """One reading task. `version` is set in single mode, `left`/`right` in paired mode."""

    case: str
    sequence: str
    calibration: bool
    version: str | None = None
    left: str | None = None
    right: str | None = None
    session: int = 1


Assignment = dict[str, list[PlannedTask]]


class CalibrationTooShort(ValueError):
    """Some readers' calibration has fewer images than min_distance, so its two versions cannot be kept apart."""

    def __init__(self, min_distance: int, images: Mapping[str, int]) -> None:
        self.min_distance, self.images = min_distance, dict(images)
        super().__init__(self.describe())

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        """The reason in words, readers named by `names` (reader key -> name) where given."""
        names = names or {}
        short = "; ".join(f"{names.get(key, key)}: {count} calibration images" for key, count in self.images.items())
        return (
            f"Calibration is read first, so the two versions of each calibration image must be at least "
            f"{self.min_distance} positions apart (min_distance) within the calibration tasks, which needs at least "
            f"{self.min_distance} calibration images per reader ({short}). Either add calibration cases (from sites "
            f"other than these readers', since readers never read their own site's cases under the cross-site "
            f"rule) or lower min_distance."
        )


def generate_assignment(
    seed: int,
    cases: Iterable[CaseInput],
    readers: Iterable[ReaderInput],
    rules: Rules,
    existing: Mapping[str, Sequence[PlannedTask]] | None = None,
) -> Assignment:
    """Returns, per reader key, the new tasks in reading order, to be placed after the reader's existing ones.

    Cases already present in `existing` are skipped, so calling this again with more cases appends them by the
    same rules without moving any existing task. The result depends only on the arguments (input order does
    not matter). Raises ValueError when the rules cannot be satisfied.
    """
    rules.check()
    existing = existing or {}
    case_list = sorted(set(cases))
    reader_list = sorted(set(readers))
    if not reader_list:
        raise ValueError("The study has no readers.")
    if len({c.key for c in case_list}) != len(case_list):
        raise ValueError("Case keys must be unique.")
    reader_keys = {r.key for r in reader_list}
    unknown_existing = set(existing) - reader_keys
    if unknown_existing:
        raise ValueError(f"Existing tasks belong to readers not in the study: {sorted(unknown_existing)}.")
    known = {c.key for c in case_list}
    missing_calibration = set(rules.calibration_cases) - known
    if missing_calibration:
        raise ValueError(f"Calibration cases are not among the study's cases: {sorted(missing_calibration)}.")

    if rules.sessions > 1 and any(existing.values()):
        raise ValueError("A study read in sessions takes all its cases in its first assignment: appended images "
                         "would come after the second session. Set the cases and generate the assignment again.")
    already = {task.case for tasks in existing.values() for task in tasks}
    new_cases = [c for c in case_list if c.key not in already and c.sequences]
    calibration = set(rules.calibration_cases)
    if already and any(c.key in calibration for c in new_cases):
        raise ValueError("Calibration cases must be in the first assignment: they are read before all others.")

    rng = random.Random(_batch_seed(seed, [c.key for c in new_cases]))
    cases_by_reader: dict[str, list[CaseInput]] = {r.key: [] for r in reader_list}
    calibration_by_reader: dict[str, list[CaseInput]] = {r.key: [] for r in reader_list}
    load = {r.key: len(existing.get(r.key, ())) for r in reader_list}

    for case in new_cases:
        if case.key not in calibration:
            continue
        eligible = _eligible(case, reader_list, rules)
        if not eligible:
            raise ValueError(f"No reader may read calibration case {case.key} under the cross-site rule.")
        for reader in eligible:
            calibration_by_reader[reader.key].append(case)
    if rules.mode == "single":
        images = {key: sum(len(c.sequences) for c in chosen) for key, chosen in calibration_by_reader.items()}
        short = {key: count for key, count in images.items() if 0 < count < rules.min_distance}
        if short:
            raise CalibrationTooShort(rules.min_distance, short)

    main_cases = [c for c in new_cases if c.key not in calibration]
    rng.shuffle(main_cases)
    for case in main_cases:
        eligible = _eligible(case, reader_list, rules)
        if len(eligible) < rules.readers_per_case:
            raise ValueError(
                f"Case {case.key} needs {rules.readers_per_case} readers but only {len(eligible)} are eligible"
                + (" (readers never read their own site's cases)." if rules.cross_site else ".")
            )
        ranked = sorted(eligible, key=lambda r: (load[r.key], rng.random()))
        for reader in ranked[: rules.readers_per_case]:
            cases_by_reader[reader.key].append(case)
            load[reader.key] += _task_count(rules, len(case.sequences))

    result: Assignment = {}
    for reader in reader_list:
        calibration_tasks = _order(calibration_by_reader[reader.key], True, rules, rng)
        main_tasks = _order(cases_by_reader[reader.key], False, rules, rng)
        result[reader.key] = calibration_tasks + main_tasks
    return result


def _batch_seed(seed: int, new_case_keys: Sequence[str]) -> int:
    """A seed per appended batch, so appending depends on the study seed and on which cases are appended."""
    digest = hashlib.sha256(f"{seed}|{','.join(sorted(new_case_keys))}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _eligible(case: CaseInput, readers: Sequence[ReaderInput], rules: Rules) -> list[ReaderInput]:
    return [r for r in readers if not (rules.cross_site and r.site == case.site)]


def _task_count(rules: Rules, images: int) -> int:
    return images * (2 if rules.mode == "single" else 1)


def _order(cases: Sequence[CaseInput], calibration: bool, rules: Rules, rng: random.Random) -> list[PlannedTask]:
    """Puts one reader's tasks for `cases` in a random order that respects the mode's rules."""
    images = [(case.key, sequence) for case in cases for sequence in sorted(case.sequences)]
    if rules.mode == "paired":
        rng.shuffle(images)
        sides = [VERSIONS, VERSIONS[::-1]] * (len(images) // 2 + 1)
        sides = sides[: len(images)]
        rng.shuffle(sides)
        return [
            PlannedTask(case, sequence, calibration, left=left, right=right)
            for (case, sequence), (left, right) in zip(images, sides, strict=True)
        ]
    if rules.sessions == 2 and not calibration:
        return session_order(images, rng)
    distance = rules.min_distance
    if distance > len(images):
        if images:  # the configured distance is kept or refused, never lowered
            raise ValueError(
                f"The two versions of an image cannot be {distance} positions apart in a list of "
                f"{len(images)} images; lower min_distance or add more cases to this batch."
            )
        return []
    return [
        PlannedTask(case, sequence, calibration, version=version)
        for (case, sequence), version in spaced_pairs_order(images, distance, rng)
    ]


def session_order(images: Sequence[tuple[str, str]], rng: random.Random) -> list[PlannedTask]:
    """Both versions of every image in two sessions: session 1 shows one version of each image, session 2 the
    other, each session in its own random order. Counterbalanced: images are taken sequence by sequence (each in
    random order) and alternately given conventional or DL first, from a fair coin, so per reader half of the images
    of each sequence, and of all, are read conventional first (to one image where a count is odd)."""
    ordered = []
    for sequence in sorted({s for _, s in images}):
        chunk = sorted(image for image in images if image[1] == sequence)
        rng.shuffle(chunk)
        ordered += chunk
    start = rng.randrange(2)
    first = {image: VERSIONS[(start + n) % 2] for n, image in enumerate(ordered)}
    sessions = [[(image, first[image]) for image in ordered], [(image, _other(first[image])) for image in ordered]]
    for tasks in sessions:
        rng.shuffle(tasks)
    return [
        PlannedTask(case, sequence, False, version=version, session=number)
        for number, tasks in enumerate(sessions, start=1)
        for (case, sequence), version in tasks
    ]


def spaced_pairs_order(
    images: Sequence[tuple[str, str]], min_distance: int, rng: random.Random
) -> list[tuple[tuple[str, str], str]]:
    """A random order of both versions of every image, the two versions of one image >= min_distance apart.

    Built position by position, choosing uniformly among the items that keep the rest completable. The
    completion test is exact: a state is completable iff placing all unopened images' first versions next and
    then the pending second versions by earliest allowed position works (an exchange argument shows that
    schedule is optimal), which reduces to the two inequalities in `_completable`.
    Which version comes first is a fair coin per image, so the order says nothing about the version.
    """
    if min_distance > max(1, len(images)):
        raise ValueError(f"min_distance {min_distance} exceeds the number of images ({len(images)}).")
    unopened = list(images)
    rng.shuffle(unopened)
    first_version = {image: rng.choice(VERSIONS) for image in unopened}
    pending: list[tuple[int, tuple[str, str]]] = []  # (earliest position, image), in order of opening
    order: list[tuple[tuple[str, str], str]] = []
    total = 2 * len(images)
    for position in range(total):
        due = [i for i, (earliest, _) in enumerate(pending) if earliest <= position]
        may_open = bool(unopened) and _completable(
            [e for e, _ in pending] + [position + min_distance], position + 1, len(unopened) - 1, min_distance
        )
        # Due items are a prefix of `pending`; closing any of them leaves the same completion problem.
        may_close = bool(due) and _completable([e for e, _ in pending[1:]], position + 1, len(unopened), min_distance)
        choices = (len(unopened) if may_open else 0) + (len(due) if may_close else 0)
        if choices == 0:
            raise ValueError("No order satisfies min_distance for these images.")
        pick = rng.randrange(choices)
        if may_open and pick < len(unopened):
            image = unopened.pop(pick)
            order.append((image, first_version[image]))
            pending.append((position + min_distance, image))
        else:
            pick -= len(unopened) if may_open else 0
            _, image = pending.pop(due[pick])
            order.append((image, _other(first_version[image])))
    return order


def _completable(pending_earliest: list[int], position: int, unopened: int, min_distance: int) -> bool:
    """Whether pending second versions (earliest positions, ascending) and `unopened` whole images fit from
    `position` on: unopened first versions take the next slots, then the seconds go in earliest-first order."""
    if unopened and unopened + len(pending_earliest) < min_distance:
        return False
    start = position + unopened
    return all(start + j >= earliest for j, earliest in enumerate(pending_earliest))


def _other(version: str) -> str:
    return VERSIONS[1] if version == VERSIONS[0] else VERSIONS[0]


def balance(assignment: Mapping[str, Sequence[PlannedTask]]) -> dict[str, int]:
    """Non-calibration task count per reader, the quantity assignment keeps balanced."""
    return {reader: sum(not t.calibration for t in tasks) for reader, tasks in assignment.items()}
