"""The production topology on loopback under faults (issue 13, item 3): gunicorn, its own PostgreSQL and Redis,
moto's S3 server and the two workers of deploy/topology.py, with readers reading while each fault happens.

After every fault the audit of benchmarks/topology.py must find every acknowledged score stored, every job
finished or failed-and-retryable, no series with a missing slice or file, and no staged file once the jobs end.
The long run with 50 readers and 20 uploads is benchmarks/topology.py; these are the faults that fit in minutes.
"""

import os

import pytest
import requests

from benchmarks.topology import (
    JOB_TIMINGS,
    Readers,
    Record,
    fault_service,
    fault_worker,
    in_topology,
    unread,
    wait_for_jobs,
)
from deploy.topology import Topology

# The topology brings its own PostgreSQL and Redis whatever database the suite runs on, so it runs once: in the
# PostgreSQL pass of scripts/test.sh (DATABASE_URL=postgres://...).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="runs in the PostgreSQL pass (DATABASE_URL=postgres://...): one run is enough"),
]

READERS = 6
THINK = 0.5


@pytest.fixture(scope="module")
def topology():
    topology = Topology.in_temporary_folder()
    topology.extra_env.update(JOB_TIMINGS)
    topology.start(collect_static=False)
    try:
        people = in_topology(topology, "seed", {"readers": READERS, "patients_per_site": 1, "readers_per_case": 4})
        yield topology, people, {}
    finally:
        topology.stop()
        topology.remove()


def under_load(topology, fault) -> tuple[object, Record]:
    """Readers read while `fault(topology, record)` runs; returns its outcome and what the readers saw."""
    topology, people, acknowledged = topology
    record = Record()
    readers = Readers(topology.url, unread(people, acknowledged), THINK, record).start()
    try:
        outcome = fault(topology, people, record)
    finally:
        readers.finish(0)
    acknowledged.update(record.acknowledged)
    assert wait_for_jobs(topology.url, people["admin"], 240) is not None, "jobs still queued or running after 4 min"
    return outcome, record


def assert_nothing_lost(topology) -> dict:
    topology, _, acknowledged = topology
    audit = in_topology(topology, "audit", acknowledged)
    assert audit["lost_scores"] == []
    assert audit["unsettled_jobs"] == []
    assert audit["failed_not_retryable"] == []
    assert audit["half_series"] == []
    assert audit["missing_file_count"] == 0
    assert audit["staged_files"] == []
    return audit


def test_web_process_killed_mid_submit_loses_no_acknowledged_score(topology):
    outcome, record = under_load(topology, lambda t, people, record: fault_service(t, people, "web", record))
    assert "submit" in outcome["failed_while_down"], "no submit was cut off: the fault did not happen mid-submit"
    assert outcome["failed_once_back"] == {}
    assert record.acknowledged, "no score was acknowledged"
    assert_nothing_lost(topology)


def test_redis_restart_delays_nothing_for_good(topology):
    outcome, record = under_load(topology, lambda t, people, record: fault_service(t, people, "redis", record))
    assert outcome["failed_once_back"] == {}
    assert record.acknowledged
    assert_nothing_lost(topology)


def test_postgres_restart_loses_nothing(topology):
    outcome, record = under_load(topology, lambda t, people, record: fault_service(t, people, "postgres", record))
    assert outcome["failed_once_back"] == {}, "requests sent after PostgreSQL was back failed"
    assert record.acknowledged
    assert_nothing_lost(topology)


def test_requests_after_a_postgres_restart_find_a_live_connection(topology):
    """With nothing sent while PostgreSQL is down, each of gunicorn's processes still holds its kept connection
    (READERSTUDY_DB_CONN_MAX_AGE=60, as in compose) when it is back: each must notice it is dead, not answer 500."""
    topology, people, _ = topology

    def twelve_requests() -> list[int]:
        return [requests.get(f"{topology.url}/api/imaging/uploads/?limit=1", auth=tuple(people["admin"]),
                             timeout=30).status_code for _ in range(12)]

    assert twelve_requests() == [200] * 12
    topology.restart_postgres(down_seconds=1)
    assert twelve_requests() == [200] * 12


@pytest.mark.parametrize(("queue", "index"), [("default", 0), ("gpu", 1)])
def test_worker_killed_mid_job_is_retried_to_the_end(topology, queue, index):
    outcome, _ = under_load(topology, lambda t, people, record: fault_worker(t, people, queue, record, index))
    assert outcome["status"] == "done", outcome
    assert outcome["attempts"] >= 2, outcome  # the killed attempt, then the one that finished
    assert_nothing_lost(topology)
