"""Load and faults on the production topology, on loopback (issue 13, item 3).

Starts deploy/topology.py (gunicorn, its own PostgreSQL and Redis, moto's S3 server, workers on queues default and
gpu), builds a small demo through the normal ingestion (synthetic DICOM, every series enhanced by the gpu worker)
and a study open for reading, then:

1. load: N readers at a reading pace (open the task, fetch its slices in ranges as the viewer does, autosave, think,
   submit) while a coordinator uploads 20 synthetic studies at once through the API; p50/p99 of the requests, uploads
   finished, and nothing lost (every acknowledged score stored, every job finished or failed-and-retryable, no
   half series, no staged file left);
2. faults, each while readers read: a worker SIGKILLed mid-ingest and mid-enhancement (main and pool processes),
   Redis restarted, PostgreSQL restarted, gunicorn SIGKILLed mid-submit; the same checks after each.

    .venv/bin/python benchmarks/topology.py [--readers 50] [--uploads 20] [--think 15] [--minutes 6]
        [--faults redis,postgres,web,worker-ingest,worker-enhance] [--fault-think 5] [--no-load]

Bounded: the load stops after --minutes or when the readers have read every task, and every wait has a limit.
Everything listens on 127.0.0.1 only. tests/topology/ runs the faults that fit in minutes with the same code.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from deploy.topology import Topology  # noqa: E402

SLICES = 8  # every synthetic series: 8 slices of 64 x 64
SHAPE = (SLICES, 64, 64)
FAULT_SHAPE = (24, 128, 128)
SLICES_OF_SIZE = {SHAPE[1]: SHAPE[0], FAULT_SHAPE[1]: FAULT_SHAPE[0]}
SEED = 2026
# Short job timings so that a killed worker's job is found stale in seconds, not the production minutes.
JOB_TIMINGS = {
    "READERSTUDY_JOB_HEARTBEAT_SECONDS": "2",
    "READERSTUDY_JOB_STALE_SECONDS": "8",
    "READERSTUDY_JOB_SWEEP_SECONDS": "3",
    "READERSTUDY_JOB_REQUEUE_SECONDS": "30",
}
UNSETTLED = {"queued", "running", "pending", "processing"}


# -- inside the topology: `python benchmarks/topology.py seed|audit`, run with the app processes' environment ------

def seed(readers: int, patients_per_site: int, readers_per_case: int) -> dict:
    """The demo's sites, people and studies (ingested here, enhanced by the topology's gpu worker), `readers`
    more readers, and a cross-site study of every case open for reading. Returns the logins and each reader's
    task tokens."""
    import django

    django.setup()
    from apps.accounts.models import Role, User
    from apps.accounts.services import create_member
    from apps.imaging.models import Case
    from apps.imaging.services import enhancement
    from apps.imaging.services.demo import create_demo
    from apps.studies.services import definition
    from apps.studies.services.demo import wait_for_enhancement

    demo = create_demo(patients_per_site=patients_per_site, seed=SEED, shape_2d=SHAPE, shape_3d=SHAPE)
    people = []
    for index in range(readers):
        site = demo.sites[index % len(demo.sites)]
        password = f"topology-reader-{index}"
        people.append((create_member(f"load-reader-{index}", password, Role.READER, site, pseudonym=f"L{index}"),
                       password))
    if not wait_for_enhancement(600, lambda done, total: None):
        raise SystemExit("the gpu worker did not enhance the demo series in 10 minutes")
    # The residual check fails some pairs of such small images; an admin looks at them and accepts them.
    admin = User.objects.get(username="admin")
    for series in enhancement.held_dl_series().select_related("produced_by"):
        enhancement.accept_qa(series.produced_by, admin)
    study = definition.create_study("Topology load", seed=SEED, readers_per_case=readers_per_case, min_distance=2)
    definition.set_readers(study, [user for user, _ in people])
    definition.set_cases(study, Case.objects.order_by("code"))
    definition.generate(study)
    definition.open_for_reading(study)
    logins = {login.username: login.password for login in demo.logins}
    return {
        "admin": ["admin", logins["admin"]],
        "coordinator": ["coordinator-north", logins["coordinator-north"]],
        "readers": [
            [user.username, password,
             list(study.tasks.filter(reader=user).order_by("position").values_list("token", flat=True))]
            for user, password in people
        ],
    }


def audit(acknowledged: dict[str, dict]) -> dict:
    """What the fault checks assert, read from the database, the object storage and the staging folder:
    acknowledged scores missing or different, jobs not finished, failed jobs that cannot be retried, series with
    a missing slice or file, staged files left."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.files.storage import default_storage
    from django.db.models import Count

    from apps.imaging.models import Series
    from apps.jobs import lifecycle
    from apps.studies.models import ReadingTask, TaskStatus
    from apps.studies.services.reading import saved_scores

    lost = []
    for token, scores in acknowledged.items():
        task = ReadingTask.objects.get(token=token)
        if task.status != TaskStatus.SUBMITTED or saved_scores(task, list(scores)) != scores:
            lost.append(token)
    jobs, unsettled, stuck_failed = {}, [], []
    for model in lifecycle.job_models():
        rows = list(model.objects.all())
        jobs[model.__name__] = {status: sum(1 for r in rows if r.status == status) for status in {r.status for r in rows}}
        unsettled += [f"{model.__name__} {r.pk} {r.status}" for r in rows if r.status in UNSETTLED]
        stuck_failed += [f"{model.__name__} {r.pk}" for r in rows if r.status == "failed" and not lifecycle.can_retry(r)]
    half = []
    series = Series.objects.annotate(n=Count("instances")).select_related("conventional")
    counts = {s.pk: s.n for s in series}
    for s in series:
        # Every series the benchmark makes has the slice count of its image size; a DL series, its input's.
        expected = counts[s.conventional_id] if s.conventional_id else SLICES_OF_SIZE[s.rows]
        if s.n and s.n != expected:
            half.append(f"series {s.pk} ({s.version}): {s.n} of {expected} slices")
    missing = [
        name for name in Series.objects.filter(instances__isnull=False).values_list("instances__file", flat=True)
        if not default_storage.exists(name)
    ]
    staging = Path(settings.UPLOAD_STAGING_DIR)
    staged = [str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file()] if staging.exists() else []
    return {
        "acknowledged": len(acknowledged), "lost_scores": lost, "jobs": jobs, "unsettled_jobs": unsettled,
        "failed_not_retryable": stuck_failed, "series": len(counts), "half_series": half,
        "missing_files": missing[:20], "missing_file_count": len(missing), "staged_files": staged[:20],
        "staged_file_count": len(staged),
    }


def readers_per_case(readers: int) -> int:
    """As many as the cross-site rule allows (readers of the case's own site never read it), at most 20."""
    return min(20, readers - (readers + 2) // 3)


def in_topology(topology: Topology, command: str, payload: object = None, timeout: float = 900) -> dict:
    """Runs `seed` or `audit` in a process with the topology's app environment; its JSON answer."""
    done = subprocess.run([sys.executable, str(Path(__file__)), command], cwd=ROOT, env=topology.env,
                          input=json.dumps(payload), capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-6000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the clients ----------------------------------------------------------------------------------------------------

@dataclass
class Record:
    """Latencies and failures (with the time each failed request was sent) of every request, by kind;
    acknowledged scores by task token. Thread-safe."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    acknowledged: dict[str, dict] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: str, call):
        """Calls `call()` (a request); records its latency when it answered below 500, else the failure."""
        start = time.perf_counter()
        with self.lock:
            self.in_flight[kind] = self.in_flight.get(kind, 0) + 1
        try:
            response = call()
        except Exception as exc:  # a refused or reset connection is what a reader sees of a dead server
            self.fail(kind, type(exc).__name__, start)
            return None
        finally:
            with self.lock:
                self.in_flight[kind] -= 1
        elapsed = time.perf_counter() - start
        if response.status_code >= 500:
            self.fail(kind, f"HTTP {response.status_code}", start)
            return None
        with self.lock:
            self.latencies.setdefault(kind, []).append(elapsed)
        return response

    def fail(self, kind: str, what: str, sent: float | None = None) -> None:
        with self.lock:
            self.failures.setdefault(kind, []).append((time.perf_counter() if sent is None else sent, what))

    def failed_between(self, start: float, end: float = float("inf")) -> dict[str, str]:
        """The failed requests sent in [start, end), counted by kind and what went wrong."""
        found: dict[str, str] = {}
        with self.lock:
            for kind, failures in sorted(self.failures.items()):
                what = [w for sent, w in failures if start <= sent < end]
                if what:
                    found[kind] = ", ".join(f"{what.count(w)} x {w}" for w in sorted(set(what)))
        return found

    def summary(self) -> dict[str, str]:
        lines = {}
        for kind, values in sorted(self.latencies.items()):
            ms = np.asarray(values) * 1000
            lines[kind] = (f"n={len(values)} p50 {np.percentile(ms, 50):.0f} ms, p99 {np.percentile(ms, 99):.0f} ms, "
                           f"max {ms.max():.0f} ms")
        for kind, what in self.failed_between(0).items():
            lines[f"{kind} failed"] = what
        return lines


def login(base: str, username: str, password: str):
    """A browser-like session logged in through the login page, with the CSRF header set for the API."""
    import requests

    session = requests.Session()
    session.get(f"{base}/accounts/login/").raise_for_status()
    token = session.cookies["csrftoken"]
    response = session.post(f"{base}/accounts/login/", data={"username": username, "password": password,
                            "csrfmiddlewaretoken": token}, headers={"Referer": base + "/"}, allow_redirects=False)
    if response.status_code != 302:
        raise RuntimeError(f"login of {username} failed: HTTP {response.status_code}")
    session.headers.update({"X-CSRFToken": session.cookies["csrftoken"], "Referer": base + "/"})
    return session


def submit_until_acknowledged(session, base: str, token: str, body: dict, record: Record, give_up: float) -> bool:
    """POST submit, again after a failure (as the viewer's retry does) until it is acknowledged or `give_up`."""
    while time.monotonic() < give_up:
        response = record.timed("submit", lambda: session.post(f"{base}/api/reading/tasks/{token}/submit/",
                                                               json=body, timeout=30))
        if response is not None and response.status_code >= 400:
            record.fail("submit", f"HTTP {response.status_code}")
            return False
        if response is not None:
            with record.lock:
                record.acknowledged[token] = body["scores"]
            return True
        time.sleep(0.5)
    return False


def read_tasks(base: str, reader: list, think: float, record: Record, stop: threading.Event, seed: int) -> int:
    """One reader: every task in order (task JSON, open, its slices in ranges of 16, 6 at a time, autosave, think,
    submit) until `stop`; failed requests are retried, as the viewer does. Returns the tasks submitted."""
    username, password, tokens = reader
    rng = random.Random(seed)
    session = None
    while session is None and not stop.is_set():
        try:
            session = login(base, username, password)
        except Exception as exc:
            record.fail("login", type(exc).__name__)
            time.sleep(1)
    done = 0
    with ThreadPoolExecutor(6) as pool:
        for token in tokens:
            if stop.is_set():
                break
            api = f"{base}/api/reading/tasks/{token}/"
            task = None
            while task is None and not stop.is_set():
                task = record.timed("task", lambda api=api: session.get(api, timeout=30))
                if task is None:
                    time.sleep(0.5)
            if task is None:
                break
            task = task.json()
            record.timed("open", lambda api=api: session.post(api + "open/", timeout=30))
            # As the viewer loads a stack: ranges of up to 16 slices, 6 requests at a time.
            ranges = [f"{base}{panel['slices_url']}?first={first}&last={min(first + 15, len(panel['image_urls']) - 1)}"
                      for panel in task["panels"] for first in range(0, len(panel["image_urls"]), 16)]
            list(pool.map(lambda url: record.timed("slices", lambda: session.get(url, timeout=30)), ranges))
            scores = {p["panel"]: {item["key"]: rng.randint(1, 5) for item in task["items"]} for p in task["panels"]}
            first = task["panels"][0]["panel"]
            autosave = {"panel": first, "scores": {"noise": scores[first]["noise"]}}
            record.timed("autosave", lambda api=api, body=autosave: session.put(api + "scores/", json=body, timeout=30))
            stop.wait(rng.uniform(0.5, 1.5) * think)
            body = {"scores": scores, "seconds_on_task": think}
            if submit_until_acknowledged(session, base, token, body, record, time.monotonic() + 120):
                done += 1
    return done


def study_zip(index: int, shape: tuple[int, int, int] = SHAPE, sequences: tuple[str, ...] = ("T2W", "FLAIR",
              "T1W_POST")) -> bytes:
    """One synthetic study (a series of each of `sequences`, 8 slices of 64 x 64 unless `shape` says otherwise)
    of a patient of site north, zipped as a coordinator sends it."""
    from apps.imaging import synthetic

    patient = synthetic.make_patient(0, 100 + index, SEED)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        files = synthetic.write_study(Path(tmp), patient, shape_2d=shape, shape_3d=shape, seed=SEED,
                                       sequences=sequences)
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in files:
                archive.write(path, path.relative_to(tmp).as_posix())
    return buffer.getvalue()


def upload(base: str, login_pair: list, body: bytes, name: str, record: Record) -> int | None:
    import requests

    response = record.timed("upload", lambda: requests.post(
        f"{base}/api/imaging/uploads/", auth=tuple(login_pair), files=[("files", (name, body, "application/zip"))],
        timeout=300))
    if response is None:
        return None
    response.raise_for_status()
    return response.json()["id"]


def api_list(base: str, admin: list, path: str) -> list[dict]:
    import requests

    response = requests.get(f"{base}{path}?limit=10000", auth=tuple(admin), timeout=60)
    response.raise_for_status()
    return response.json()["results"]


def wait_for_jobs(base: str, admin: list, seconds: float) -> float | None:
    """Seconds until no upload and no enhancement job is queued or running (as the admin's API shows them), or
    None after `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            rows = api_list(base, admin, "/api/imaging/uploads/") + api_list(base, admin,
                                                                             "/api/imaging/enhancement-jobs/")
            if not any(row["status"] in UNSETTLED for row in rows):
                return time.monotonic() - start
        except Exception:  # the server may be restarting: ask again
            pass
        time.sleep(1)
    return None


def wait_for_running(base: str, admin: list, path: str, seconds: float = 600) -> dict:
    """The first job listed at `path` that a worker is running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for row in api_list(base, admin, path):
            if row["status"] in ("running", "processing"):
                return row
        time.sleep(0.1)
    raise RuntimeError(f"no job at {path} started in {seconds} s")


# -- the runs -------------------------------------------------------------------------------------------------------

@dataclass
class Readers:
    """The reader threads of a run: started, then stopped and joined."""

    base: str
    readers: list
    think: float
    record: Record
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    submitted: list[int] = field(default_factory=list)

    def start(self) -> Readers:
        for index, reader in enumerate(self.readers):
            thread = threading.Thread(target=lambda r=reader, i=index: self.submitted.append(
                read_tasks(self.base, r, self.think, self.record, self.stop, i)), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def finish(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.stop.set()
        for thread in self.threads:
            thread.join(150)


def run_load(topology: Topology, people: dict, uploads: int, think: float, minutes: float) -> dict:
    base, record = topology.url, Record()
    zips = [study_zip(i) for i in range(uploads)]
    readers = Readers(base, people["readers"], think, record).start()
    time.sleep(min(10.0, think))
    started = time.monotonic()
    with ThreadPoolExecutor(uploads) as pool:
        batch_ids = list(pool.map(lambda i: upload(base, people["coordinator"], zips[i], f"study{i}.zip", record),
                                  range(uploads)))
    settled = wait_for_jobs(base, people["admin"], minutes * 60)
    uploads_seconds = time.monotonic() - started if settled is not None else None
    readers.finish(max(0.0, minutes * 60 - (time.monotonic() - started)))
    batches = {row["id"]: row for row in api_list(base, people["admin"], "/api/imaging/uploads/")}
    finished = [b for b in batch_ids if b and batches[b]["status"] == "done"
                and batches[b]["accepted_count"] == batches[b]["file_count"]]
    return {"record": record, "submitted": sum(readers.submitted), "uploads_accepted": len([b for b in batch_ids if b]),
            "uploads_finished": len(finished), "uploads_seconds": uploads_seconds}


def fault_worker(topology: Topology, people: dict, queue: str, record: Record, index: int) -> dict:
    """Kills the worker of `queue` (main and pool processes) while it runs a job of a fresh upload, starts it
    again, and times how long until every job has settled."""
    base, admin = topology.url, people["admin"]
    path = "/api/imaging/uploads/" if queue == "default" else "/api/imaging/enhancement-jobs/"
    # One series, larger than the load's, so that the job runs long enough to be killed in the middle.
    upload(base, people["coordinator"], study_zip(1000 + index, FAULT_SHAPE, ("T2W",)), f"fault{index}.zip", record)
    job = wait_for_running(base, admin, path)
    topology.kill(f"worker-{queue}")
    killed = time.monotonic()
    topology.start_worker(queue)
    settled = wait_for_jobs(base, admin, 240)
    after = next(row for row in api_list(base, admin, path) if row["id"] == job["id"])
    return {"job": f"{path}{job['id']}", "status": after["status"], "attempts": after.get("attempts"),
            "error": after.get("error", "")[:200],
            "settled_s": None if settled is None else round(time.monotonic() - killed, 1)}


def fault_service(topology: Topology, people: dict, name: str, record: Record, down_seconds: float = 3) -> dict:
    """Restarts Redis or PostgreSQL, `down_seconds` down, while the coordinator uploads a study (or SIGKILLs
    gunicorn and starts it again) under the readers' load. The readers' failed requests are split into those sent
    while the service was down and those sent once it was back; the upload's answer and what became of it are
    reported."""
    sent: dict = {}

    def upload_while_down() -> None:
        def send() -> None:
            sent["batch"] = upload(topology.url, people["coordinator"], study_zip(2000 + len(sent)),
                                   f"{name}-down.zip", record)
        sent["thread"] = threading.Thread(target=send)
        sent["thread"].start()

    start = time.perf_counter()
    if name == "redis":
        topology.restart_redis(down_seconds, upload_while_down)
    elif name == "postgres":
        topology.restart_postgres(down_seconds, upload_while_down)
    else:
        deadline = time.monotonic() + 60
        while not record.in_flight.get("submit") and time.monotonic() < deadline:
            time.sleep(0.001)  # killed mid-submit: while a reader's submit is on its way (sent before `down`)
        down = time.perf_counter()
        topology.kill("web")
        topology.start_web()
    back = time.perf_counter()
    time.sleep(5)
    outcome = {"down_s": round(back - (down if name == "web" else start), 1),
               "failed_while_down": record.failed_between(start, back),
               "failed_once_back": record.failed_between(back)}
    if "thread" in sent:
        sent["thread"].join(300)
        outcome["upload_while_down"] = record.failed_between(start).get("upload", "acknowledged")
    return outcome


def unread(people: dict, acknowledged: dict) -> list:
    """The readers with the tasks they have not submitted yet."""
    return [[name, password, [t for t in tokens if t not in acknowledged]] for name, password, tokens in
            people["readers"]]


def run_faults(topology: Topology, people: dict, faults: list[str], think: float,
               acknowledged: dict) -> tuple[dict, Record]:
    record = Record()
    readers = Readers(topology.url, unread(people, acknowledged), think, record).start()
    time.sleep(think)
    outcomes = {}
    for index, fault in enumerate(faults):
        if fault == "worker-ingest":
            outcomes[fault] = fault_worker(topology, people, "default", record, index)
        elif fault == "worker-enhance":
            outcomes[fault] = fault_worker(topology, people, "gpu", record, index)
        else:
            outcomes[fault] = fault_service(topology, people, fault, record)
        print(f"fault {fault}: {json.dumps(outcomes[fault])}", flush=True)
        time.sleep(think)
    readers.finish(0)
    outcomes["settled_s"] = wait_for_jobs(topology.url, people["admin"], 240)
    return outcomes, record


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("seed", "audit"):
        payload = json.loads(sys.stdin.read() or "null")
        answer = seed(**payload) if sys.argv[1] == "seed" else audit(payload)
        print(json.dumps(answer))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--think", type=float, default=15.0, help="mean seconds a reader looks at an image")
    parser.add_argument("--minutes", type=float, default=6.0, help="the longest the load runs")
    parser.add_argument("--faults", default="redis,postgres,web,worker-ingest,worker-enhance")
    parser.add_argument("--fault-think", type=float, default=5.0, help="mean think time while the faults happen")
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the topology's folder (logs) and print it")
    args = parser.parse_args()

    print(f"machine: {describe()}", flush=True)
    topology = Topology.in_temporary_folder()
    topology.extra_env.update(JOB_TIMINGS)
    try:
        t0 = time.monotonic()
        topology.start()
        print(f"topology started in {time.monotonic() - t0:.0f} s", flush=True)
        t0 = time.monotonic()
        people = in_topology(topology, "seed", {"readers": args.readers, "patients_per_site": 2,
                                                "readers_per_case": readers_per_case(args.readers)})
        tasks = sum(len(r[2]) for r in people["readers"])
        print(f"demo built and enhanced in {time.monotonic() - t0:.0f} s: {len(people['readers'])} readers, "
              f"{tasks} tasks", flush=True)
        acknowledged: dict[str, dict] = {}
        if not args.no_load:
            # The load reads 60 % of every reader's tasks; the rest are read while the faults happen.
            share = {**people, "readers": [[n, p, tokens[:(len(tokens) * 3 + 4) // 5]]
                                           for n, p, tokens in people["readers"]]}
            load = run_load(topology, share, args.uploads, args.think, args.minutes)
            acknowledged.update(load["record"].acknowledged)
            print(f"load: {args.readers} readers (think {args.think:.0f} s), {load['submitted']} tasks submitted; "
                  f"{args.uploads} uploads at once: {load['uploads_accepted']} accepted, {load['uploads_finished']} "
                  f"finished, every job settled after {load['uploads_seconds']} s", flush=True)
            for kind, line in load["record"].summary().items():
                print(f"  {kind}: {line}")
            print(f"  audit: {json.dumps(in_topology(topology, 'audit', acknowledged))}", flush=True)
        faults = [f for f in args.faults.split(",") if f]
        if faults:
            outcomes, record = run_faults(topology, people, faults, args.fault_think, acknowledged)
            acknowledged.update(record.acknowledged)
            print(f"every job settled {outcomes['settled_s']} s after the last fault")
            for kind, line in record.summary().items():
                print(f"  {kind}: {line}")
            print(f"  audit: {json.dumps(in_topology(topology, 'audit', acknowledged))}", flush=True)
    finally:
        topology.stop()
        if args.keep:
            print(f"kept: {topology.root}")
        else:
            topology.remove()


if __name__ == "__main__":
    main()
