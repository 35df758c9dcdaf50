"""The pure assignment function: every rule, determinism from the seed, balance, appending, global RNG."""

import random
from collections import Counter, defaultdict

import numpy as np
import pytest

from apps.studies.assignment import (
    CaseInput,
    PlannedTask,
    ReaderInput,
    Rules,
    balance,
    generate_assignment,
    spaced_pairs_order,
)

SEQUENCES = ("FLAIR", "T1W_POST", "T2W")
READERS = [ReaderInput("R1", "A"), ReaderInput("R2", "B"), ReaderInput("R3", "C")]


def make_cases(n: int, sites: str = "ABC", start: int = 0) -> list[CaseInput]:
    return [CaseInput(f"C{i:03d}", sites[i % len(sites)], SEQUENCES) for i in range(start, start + n)]


def positions(tasks: list[PlannedTask]) -> dict[tuple[str, str], list[int]]:
    where: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, task in enumerate(tasks):
        where[(task.case, task.sequence)].append(index)
    return where


def readers_of(assignment) -> dict[str, set[str]]:
    by_case: dict[str, set[str]] = defaultdict(set)
    for reader, tasks in assignment.items():
        for task in tasks:
            by_case[task.case].add(reader)
    return by_case


def test_cross_site_rule_is_respected():
    cases = make_cases(30)
    site = {c.key: c.site for c in cases}
    reader_site = {r.key: r.site for r in READERS}
    assignment = generate_assignment(7, cases, READERS, Rules(readers_per_case=2, min_distance=10))
    for reader, tasks in assignment.items():
        assert all(site[t.case] != reader_site[reader] for t in tasks)


def test_without_cross_site_rule_own_site_cases_are_allowed():
    cases = make_cases(30)
    assignment = generate_assignment(7, cases, READERS, Rules(readers_per_case=3, cross_site=False))
    assert all(len(readers) == 3 for readers in readers_of(assignment).values())


@pytest.mark.parametrize("per_case", [1, 2])
def test_readers_per_case(per_case):
    cases = make_cases(24)
    assignment = generate_assignment(3, cases, READERS, Rules(readers_per_case=per_case, min_distance=4))
    assert {k: len(v) for k, v in readers_of(assignment).items()} == {c.key: per_case for c in cases}


def test_single_mode_has_both_versions_of_every_image_per_reader():
    assignment = generate_assignment(5, make_cases(12), READERS, Rules(readers_per_case=1, min_distance=3))
    for tasks in assignment.values():
        versions = defaultdict(list)
        for task in tasks:
            assert task.left is None and task.right is None
            versions[(task.case, task.sequence)].append(task.version)
        assert all(sorted(v) == ["conventional", "dl"] for v in versions.values())


def test_paired_mode_one_task_per_image_with_left_right_randomised_and_balanced():
    assignment = generate_assignment(5, make_cases(30), READERS, Rules(mode="paired", readers_per_case=2))
    for tasks in assignment.values():
        assert Counter((t.case, t.sequence) for t in tasks).most_common(1)[0][1] == 1
        assert all(t.version is None and {t.left, t.right} == {"conventional", "dl"} for t in tasks)
        lefts = Counter(t.left for t in tasks)
        assert abs(lefts["dl"] - lefts["conventional"]) <= 1


@pytest.mark.parametrize("distance", [1, 5, 20, 40])
def test_two_versions_of_an_image_are_at_least_min_distance_apart(distance):
    assignment = generate_assignment(11, make_cases(60), READERS, Rules(min_distance=distance))
    for tasks in assignment.values():
        gaps = [b - a for a, b in positions(tasks).values()]
        assert min(gaps) >= distance


@pytest.mark.parametrize("seed", range(40))
def test_spaced_order_reaches_the_tightest_feasible_distance(seed):
    images = [(f"c{i}", "T2W") for i in range(7)]
    order = spaced_pairs_order(images, 7, random.Random(seed))
    where = defaultdict(list)
    for index, (image, _) in enumerate(order):
        where[image].append(index)
    assert all(b - a >= 7 for a, b in where.values())


def test_which_version_comes_first_is_not_fixed():
    assignment = generate_assignment(2, make_cases(90), READERS, Rules(min_distance=5))
    firsts = Counter()
    for tasks in assignment.values():
        seen = set()
        for task in tasks:
            if (task.case, task.sequence) not in seen:
                seen.add((task.case, task.sequence))
                firsts[task.version] += 1
    assert 0.4 < firsts["dl"] / sum(firsts.values()) < 0.6


def test_calibration_cases_come_first_for_every_eligible_reader_and_are_flagged():
    cases = make_cases(30)
    calibration = ("C000", "C001", "C002", "C003")  # sites A, B, C, A: every reader gets two or three cases
    rules = Rules(min_distance=5, calibration_cases=calibration)
    assignment = generate_assignment(9, cases, READERS, rules)
    site = {c.key: c.site for c in cases}
    for reader, tasks in assignment.items():
        flags = [t.calibration for t in tasks]
        n_calibration = sum(flags)
        assert flags[:n_calibration] == [True] * n_calibration
        assert {t.case for t in tasks if t.calibration} == {
            c for c in calibration if site[c] != dict((r.key, r.site) for r in READERS)[reader]
        }
        # The configured distance holds inside the calibration block as everywhere else.
        assert min(b - a for a, b in positions(tasks[:n_calibration]).values()) >= 5
    assert readers_of(assignment)["C000"] == {"R2", "R3"}


def test_calibration_orders_differ_between_readers_and_say_nothing_about_the_version():
    """Calibration is read first by design (the paper's calibration session precedes formal review), but each
    reader gets their own random order, and which version of an image comes first is a coin toss."""
    cases = make_cases(30, sites="AB")
    readers = [ReaderInput(f"R{i}", "C") for i in range(6)]
    rules = Rules(min_distance=4, calibration_cases=("C000", "C001"))
    assignment = generate_assignment(11, cases, readers, rules)
    orders = {tuple((t.case, t.sequence, t.version) for t in tasks if t.calibration) for tasks in assignment.values()}
    assert len(orders) > 1
    firsts = Counter(order[0][2] for order in orders)
    assert set(firsts) <= {"conventional", "dl"}


@pytest.mark.parametrize("min_distance", [4, 6])
def test_calibration_too_short_for_the_distance_is_refused_not_shortened(min_distance):
    """One calibration case of three sequences gives three images: the two versions of each cannot be four apart
    while calibration comes first. The rule is refused with the reason, never silently lowered to three."""
    rules = Rules(min_distance=min_distance, calibration_cases=("C000",))
    with pytest.raises(ValueError) as raised:
        generate_assignment(1, make_cases(30), READERS, rules)
    message = str(raised.value)
    assert f"at least {min_distance} positions apart" in message
    assert "R2: 3 calibration images" in message and "R3: 3 calibration images" in message
    assert "add calibration cases" in message and "lower min_distance" in message


def test_calibration_within_the_distance_or_paired_mode_is_fine():
    assignment = generate_assignment(1, make_cases(30), READERS, Rules(min_distance=3, calibration_cases=("C000",)))
    for reader in ("R2", "R3"):
        tasks = [t for t in assignment[reader] if t.calibration]
        assert len(tasks) == 6 and min(b - a for a, b in positions(tasks).values()) >= 3
    paired = generate_assignment(1, make_cases(30), READERS, Rules(mode="paired", min_distance=9,
                                                                   calibration_cases=("C000",)))
    assert sum(t.calibration for t in paired["R2"]) == 3


def test_same_seed_same_assignment_and_input_order_does_not_matter():
    cases = make_cases(45)
    rules = Rules(min_distance=6, calibration_cases=("C003", "C004", "C005"))
    first = generate_assignment(123, cases, READERS, rules)
    again = generate_assignment(123, list(reversed(cases)), list(reversed(READERS)), rules)
    assert first == again
    assert generate_assignment(124, cases, READERS, rules) != first


def test_global_random_state_untouched():
    random.seed(1)
    np.random.seed(1)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    generate_assignment(5, make_cases(30), READERS, Rules(min_distance=10))
    assert random.getstate() == python_state
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
               for a, b in zip(np.random.get_state(), numpy_state, strict=True))


def test_balanced_across_readers_without_site_constraints():
    readers = [ReaderInput(f"R{i}", "X") for i in range(4)]
    cases = make_cases(50, sites="ABC")
    assignment = generate_assignment(4, cases, readers, Rules(readers_per_case=2, min_distance=10))
    counts = balance(assignment)
    assert max(counts.values()) - min(counts.values()) <= 2 * len(SEQUENCES)


def test_balanced_with_cross_site_rule():
    assignment = generate_assignment(4, make_cases(60), READERS, Rules(readers_per_case=1, min_distance=10))
    counts = balance(assignment)
    assert max(counts.values()) - min(counts.values()) <= 2 * len(SEQUENCES)


def test_appending_keeps_existing_tasks_and_follows_the_rules():
    rules = Rules(readers_per_case=1, min_distance=6, calibration_cases=("C000", "C001", "C002"))
    first_cases = make_cases(30)
    first = generate_assignment(77, first_cases, READERS, rules)
    more_cases = make_cases(15, start=30)
    appended = generate_assignment(77, first_cases + more_cases, READERS, rules, existing=first)
    assert {t.case for tasks in appended.values() for t in tasks} == {c.key for c in more_cases}
    combined = {r: first[r] + appended[r] for r in first}
    site = {c.key: c.site for c in first_cases + more_cases}
    for reader in READERS:
        assert all(site[t.case] != reader.site for t in combined[reader.key])
        main = [t for t in combined[reader.key] if not t.calibration]
        assert min(b - a for a, b in positions(main).values()) >= 6
    counts = balance(combined)
    assert max(counts.values()) - min(counts.values()) <= 2 * len(SEQUENCES)
    assert generate_assignment(77, first_cases + more_cases, READERS, rules, existing=first) == appended


def test_appending_nothing_new_adds_nothing():
    rules = Rules(min_distance=3)
    first = generate_assignment(1, make_cases(9), READERS, rules)
    assert generate_assignment(1, make_cases(9), READERS, rules, existing=first) == {r.key: [] for r in READERS}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (Rules(readers_per_case=3), "only 2 are eligible"),
        (Rules(min_distance=1000), "cannot be 1000 positions apart"),
        (Rules(mode="sideways"), "Unknown reading mode"),
        (Rules(readers_per_case=0), "at least one reader"),
        (Rules(min_distance=0), "at least 1"),
        (Rules(calibration_cases=("NOPE",)), "not among the study's cases"),
    ],
)
def test_unsatisfiable_rules_raise_a_clear_value_error(rules, message):
    with pytest.raises(ValueError, match=message):
        generate_assignment(1, make_cases(12), READERS, rules)


def test_no_readers_raises():
    with pytest.raises(ValueError, match="no readers"):
        generate_assignment(1, make_cases(3), [], Rules())


def test_calibration_case_cannot_be_appended_later():
    rules = Rules(min_distance=2)
    first = generate_assignment(1, make_cases(9), READERS, rules)
    later = Rules(min_distance=2, calibration_cases=("C010",))
    with pytest.raises(ValueError, match="first assignment"):
        generate_assignment(1, make_cases(12), READERS, later, existing=first)


def test_appending_too_few_images_for_the_distance_raises():
    rules = Rules(readers_per_case=1, min_distance=6)
    first = generate_assignment(1, make_cases(30), READERS, rules)
    with pytest.raises(ValueError, match="add more cases to this batch"):
        generate_assignment(1, make_cases(31), READERS, rules, existing=first)
