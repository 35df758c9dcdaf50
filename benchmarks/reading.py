"""Benchmark of the reading backend against a live gunicorn on loopback.

Builds a demo database and image store in a temporary folder, starts gunicorn on 127.0.0.1 with it, and
measures, through HTTP with session cookies as the viewer does:

1. score-submission latency (POST .../submit/) p50/p99 with N concurrent simulated readers, each submitting
   its tasks one after the other (bounded: readers x tasks-per-reader requests), plus the autosave PUT; half the tasks paced
   (think time), half saturating;
2. time to first image of a 30-slice 512 x 512 series: the task JSON, then all 30 blinded slices fetched
   over 6 connections (a browser's per-host limit), cold (first opening of the task, first requests to the
   freshly started server) and warm;
3. a baseline in the same run: the same 30 files' bytes served as static files by the same server.

    .venv/bin/python benchmarks/reading.py [--readers 50] [--tasks-per-reader 10] [--workers 2 --threads 8]
        [--database-url postgres://postgres@127.0.0.1:5432/readerstudy_bench]

Without `--database-url` the database is a SQLite file in the temporary folder. With a PostgreSQL URL the
database named in it is created for the run and dropped afterwards (it must not exist yet); only loopback
hosts are accepted, so the load never leaves the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.sandbox import free_port, private_environment, start_server  # noqa: E402


def mr_slice(pixels: np.ndarray, index: int, uid: str, description: str) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filewriter import dcmwrite
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MRImageStorage, uid, "MR"
    ds.SeriesDescription = description
    ds.ImagePositionPatient = [-120.0, -120.0, 4.0 * index]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.46875, 0.46875], 4.0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def add_pair(case, sequence: str, slices: int, size: int, rng: np.random.Generator) -> None:
    """A conventional series and its DL version (of the deployment's default source) with `slices` real DICOM files
    each."""
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from pydicom.uid import generate_uid

    from apps.imaging.models import Instance, Series, SeriesSource, Version
    from apps.imaging.services import dl_versions, windows

    made = []
    for version in (Version.CONVENTIONAL, Version.DL):
        made.append(Series.objects.create(
            case=case, series_uid=generate_uid(), study_uid=generate_uid(), sequence=sequence, version=version,
            source=SeriesSource.ENHANCED if version == Version.DL else SeriesSource.UPLOADED,
            rows=size, columns=size, pixel_spacing=[0.46875, 0.46875], slice_thickness=4.0,
            orientation=[1, 0, 0, 0, 1, 0],
        ))
    dl_versions.link(made[0], made[1], dl_versions.default_source())  # the source a default study reads
    for index in range(slices):
        clean = rng.integers(100, 3000, (size, size))
        for series, pixels in ((made[0], clean + rng.integers(0, 300, (size, size))), (made[1], clean)):
            uid = generate_uid()
            data = mr_slice(pixels, index, uid, series.version)
            name = default_storage.save(f"series/{series.series_uid}/{index:04d}.dcm", ContentFile(data))
            Instance.objects.create(series=series, sop_uid=uid, instance_number=index + 1,
                                    slice_location=4.0 * index, file=name, size=len(data),
                                    sha256=hashlib.sha256(data).hexdigest())
    for series in made:  # as ingest and the enhancement runner do when they store a series
        windows.save_window(series, windows.stored_window(series))


def build_demo(readers: int, tasks_per_reader: int) -> dict:
    """Three sites, `readers` readers, enough one-slice cases for the submissions; one 30 x 512^2 pair."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
    from django.contrib.sessions.backends.db import SessionStore

    from apps.accounts.services import create_member
    from apps.imaging.models import Case
    from apps.institutions.models import Institution
    from apps.studies.models import TaskPanel
    from apps.studies.services import definition, images

    rng = np.random.default_rng(0)
    sites = [Institution.objects.create(name=f"Site {c}", code=f"s{c.lower()}", pseudonym=f"P{c}") for c in "ABC"]
    users = [create_member(f"bench{i}", "x-unused-password-1", "reader", sites[i % 3], pseudonym=f"B{i}")
             for i in range(readers)]
    # 2 readers per case, 2 tasks per case and reader (single mode): cases = readers x tasks / 4, plus margin.
    n_cases = max(6, (readers * tasks_per_reader + 3) // 4 + 3)
    cases = [Case.objects.create(code=f"BENCH{i:04d}", institution=sites[i % 3], patient_key=f"k{i}")
             for i in range(n_cases)]
    for case in cases:
        add_pair(case, "T2W", slices=1, size=16, rng=rng)
    study = definition.create_study("bench submissions", sequences=["T2W"], readers_per_case=2, min_distance=2)
    definition.set_readers(study, users)
    definition.set_cases(study, cases)
    definition.generate(study)
    definition.open_for_reading(study)

    big_case = Case.objects.create(code="BIG0001", institution=sites[1], patient_key="big")
    add_pair(big_case, "FLAIR", slices=30, size=512, rng=rng)
    viewer_user = create_member("viewer", "x-unused-password-1", "reader", sites[0], pseudonym="V")
    big = definition.create_study("bench image", sequences=["FLAIR"], readers_per_case=1, min_distance=1)
    definition.set_readers(big, [viewer_user])
    definition.set_cases(big, [big_case])
    definition.generate(big)
    definition.open_for_reading(big)

    # The baseline serves the very bytes of the blinded slices as static files; the task stays unopened, so the
    # server's first fetch is the reader's first opening of the series.
    first = big.tasks.get(reader=viewer_user, position=1)
    panel = TaskPanel.objects.get(task=first)
    baseline = [images.blinded_slice(viewer_user, panel.image_token, i) for i in range(30)]
    static_dir = Path(settings.STATIC_ROOT) / "bench"
    static_dir.mkdir(parents=True)
    for index, body in enumerate(baseline):
        (static_dir / f"{index}.dcm").write_bytes(body)

    # The backend that logs people in (the first one, django-axes', only refuses locked-out logins).
    login_backend = next(p for p in settings.AUTHENTICATION_BACKENDS if hasattr(load_backend(p), "get_user"))

    def session_for(user) -> str:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = login_backend
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        return store.session_key

    tasks = {u.pk: list(study.tasks.filter(reader=u).order_by("position").values_list("token", flat=True))
             for u in users}
    return {
        "readers": [(session_for(u), tasks[u.pk][:tasks_per_reader]) for u in users],
        "viewer": (
            session_for(viewer_user),
            list(big.tasks.filter(reader=viewer_user).order_by("position").values_list("token", flat=True)),
        ),
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "slice_sizes": [len(body) for body in baseline],
    }


@contextlib.contextmanager
def throwaway_database(url: str | None):
    """Creates the PostgreSQL database named in `url` for the run and drops it afterwards; SQLite needs nothing."""
    if not url or url.startswith("sqlite"):
        yield
        return
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("The benchmark runs on loopback only: give a database URL on 127.0.0.1.")
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def reader_session(base: str, cookie_name: str, session_key: str, first_task: str):
    import requests

    session = requests.Session()
    session.cookies.set(cookie_name, session_key, domain="127.0.0.1")
    session.get(f"{base}/reading/task/{first_task}/").raise_for_status()  # sets the CSRF cookie
    session.headers.update({"X-CSRFToken": session.cookies["csrftoken"], "Referer": base + "/"})
    return session


def run_submissions(base: str, demo: dict, think: float, phase: slice) -> dict[str, list[float]]:
    """Every reader autosaves one item then submits all items, task after task, all readers at once.

    `think` is the mean pause (uniform 0..2x) before each task: 0 saturates the server (closed loop, where
    latency is mostly queueing: concurrency / throughput); a pause gives a paced load, still far faster than
    real readers (the paper's took tens of seconds per image).
    """
    import random

    from apps.studies.models import DEFAULT_ITEMS

    scores = {key: 4 for key, _, _ in DEFAULT_ITEMS}
    sessions = [(reader_session(base, demo["session_cookie"], key, tokens[0]), tokens[phase], random.Random(i))
                for i, (key, tokens) in enumerate(demo["readers"])]

    def one_reader(args) -> tuple[list[float], list[float]]:
        session, tokens, rng = args
        submits, autosaves = [], []
        for token in tokens:
            time.sleep(rng.uniform(0, 2 * think))
            api = f"{base}/api/reading/tasks/{token}/"
            start = time.perf_counter()
            session.put(api + "scores/", json={"panel": "A", "scores": {"noise": 3}}).raise_for_status()
            autosaves.append(time.perf_counter() - start)
            start = time.perf_counter()
            response = session.post(api + "submit/", json={"scores": {"A": scores}, "seconds_on_task": 30.0})
            submits.append(time.perf_counter() - start)
            response.raise_for_status()
        return submits, autosaves

    started = time.perf_counter()
    with ThreadPoolExecutor(len(sessions)) as pool:
        results = list(pool.map(one_reader, sessions))
    elapsed = time.perf_counter() - started
    return {"submit": [s for r in results for s in r[0]], "autosave": [a for r in results for a in r[1]],
            "elapsed": [elapsed], "think": [think]}


def fetch_all(session, urls: list[str], connections: int = 6) -> tuple[float, list[bytes]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        bodies = list(pool.map(lambda url: session.get(url).content, urls))
    return time.perf_counter() - start, bodies


def warm_up(base: str, requests_in_flight: int = 8) -> None:
    """Concurrent requests to the login page, so that every worker has loaded the project before measuring."""
    import requests

    def one(_):
        with requests.Session() as session:
            session.get(f"{base}/accounts/login/", headers={"Connection": "close"})

    with ThreadPoolExecutor(requests_in_flight) as pool:
        list(pool.map(one, range(requests_in_flight * 2)))


def run_first_image(base: str, demo: dict) -> dict[str, float]:
    """Task JSON then all 30 slices: first opening on the freshly started server (its workers load the project on
    their first request), first opening of the other never-opened task once the workers are up, then that task
    warm; and the static baseline."""
    import requests

    key, tokens = demo["viewer"]
    session = reader_session(base, demo["session_cookie"], key, tokens[0])
    results = {}
    runs = [
        ("cold server, first opening", tokens[0]),
        ("warm server, first opening", tokens[1]),
        ("warm server, opened before", tokens[1]),
    ]
    for label, token in runs:
        if label.startswith("warm server, first"):
            warm_up(base)
        start = time.perf_counter()
        task = session.get(f"{base}/api/reading/tasks/{token}/").json()
        urls = [base + url for url in task["panels"][0]["image_urls"]]
        _, bodies = fetch_all(session, urls)
        results[f"time to first image, {label}: task JSON + all 30 blinded slices"] = time.perf_counter() - start
        if [len(b) for b in bodies] != demo["slice_sizes"]:
            raise RuntimeError(
                "The server's slices differ in size from the blinded bytes computed in-process."
            )
    start = time.perf_counter()
    session.get(urls[0]).raise_for_status()
    results["one blinded slice, warm"] = time.perf_counter() - start
    static = requests.Session()
    static_urls = [f"{base}/static/bench/{i}.dcm" for i in range(30)]
    fetch_all(static, static_urls)
    elapsed, _ = fetch_all(static, static_urls)
    results[
        "baseline: the first task's 30 blinded files' bytes as static files (WhiteNoise, same server)"
    ] = elapsed
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--tasks-per-reader", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--think", type=float, default=1.0, help="mean pause before each task, paced phase")
    parser.add_argument(
        "--database-url", help="a PostgreSQL URL on loopback; default: SQLite in a temporary folder"
    )
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="readerstudy-bench-") as folder,
        throwaway_database(args.database_url),
    ):
        env = private_environment(Path(folder), args.database_url)
        t0 = time.perf_counter()
        demo = build_demo(args.readers, args.tasks_per_reader)
        build_seconds = time.perf_counter() - t0
        port = free_port()
        server = start_server(env, port, args.workers, args.threads, keep_alive=75)
        try:
            image = run_first_image(f"http://127.0.0.1:{port}", demo)
            half = args.tasks_per_reader // 2
            submissions = [
                run_submissions(f"http://127.0.0.1:{port}", demo, args.think, slice(0, half)),
                run_submissions(f"http://127.0.0.1:{port}", demo, 0.0, slice(half, None)),
            ]
        finally:
            server.terminate()
            server.wait(10)
    report(args, build_seconds, demo["slice_sizes"][0], image, submissions)



def report(args, build_seconds: float, slice_bytes: int, image: dict, submissions: dict) -> None:
    ms = 1000.0
    print(f"machine: nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()}")
    database = "PostgreSQL" if args.database_url and args.database_url.startswith("postgres") else "SQLite (WAL)"
    print(f"server: gunicorn gthread, {args.workers} workers x {args.threads} threads, {database}, loopback, "
          "client on the same cores")
    print(f"demo build (migrate + data + assignment): {build_seconds:.1f} s; blinded slice: {slice_bytes} bytes")
    for label, seconds in image.items():
        print(f"{label}: {seconds * ms:.0f} ms")
    for phase in submissions:
        n = len(phase["submit"])
        print(f"submissions, think time {phase['think'][0]:.1f} s: {args.readers} concurrent readers, {n} submits "
              f"+ {n} autosaves in {phase['elapsed'][0]:.1f} s ({2 * n / phase['elapsed'][0]:.0f} requests/s)")
        for name in ("submit", "autosave"):
            values = phase[name]
            print(f"  {name}: p50 {percentile(values, 50) * ms:.0f} ms, p99 {percentile(values, 99) * ms:.0f} ms, "
                  f"max {max(values) * ms:.0f} ms, mean {statistics.fmean(values) * ms:.0f} ms")

if __name__ == "__main__":
    main()
