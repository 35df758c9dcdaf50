"""Benchmark of the long CSV export and of a study's full analysis, on a study of the paper's size in a database.

Builds, in a throw-away SQLite database, the study of `benchmarks/analysis.py` (294 patients at three sites,
readers R1-R3 reading only the other sites' cases, 2 readers per case, 3 sequences x 2 versions x 7 items =
24,696 scores, every score with its audit row), then measures:

- the long export through the service (`exports.write_csv`, the code behind the command and the worker),
- the same export through the HTTP view (StreamingHttpResponse consumed by Django's test client),
- the baseline: pandas `to_csv` of the same rows already in memory (no database, no escaping),
- the study's full analysis (`services.analyse_study`: export frames -> adapters -> `run_analysis`).

    .venv/bin/python benchmarks/export.py [--seed 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_model  # noqa: E402


def configure(folder: Path) -> None:
    """A private database and image store, so the benchmark never touches a real installation."""
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["READERSTUDY_VAR_DIR"] = str(folder)
    os.environ.setdefault("READERSTUDY_ALLOW_INSECURE_KEY", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readerstudy.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def build_study(seed: int):
    """The generated study stored as tasks, scores and audits (bulk inserts); returns the ReaderStudy."""
    from django.utils import timezone

    from apps.accounts.models import Role, User
    from apps.imaging.models import Case
    from apps.institutions.models import Institution
    from apps.studies.models import ReaderStudy, ReadingTask, Score, ScoreAudit, StudyStatus, TaskStatus
    from apps.studies.services.definition import add_default_items
    from benchmarks.analysis import READER_SITE, generate_study

    scores, patients, _ = generate_study(seed)
    sites = {
        code: Institution.objects.create(name=f"Hospital {code}", code=f"site-{code.lower()}", pseudonym=f"Site {code}")
        for code in sorted(set(patients["site"]))
    }
    readers = {
        name: User.objects.create(username=name.lower(), role=Role.READER, institution=sites[site], pseudonym=name)
        for name, site in READER_SITE.items()
    }
    cases = {
        row.patient_id: Case(
            code=f"C-{row.patient_id}", institution=sites[row.site], patient_key=row.patient_id, age=row.age,
            sex=row.sex, tumour_type=row.tumor_type, who_grade=row.who_grade,
        )
        for row in patients.itertuples()
    }
    Case.objects.bulk_create(cases.values())
    study = ReaderStudy.objects.create(title="Paper-sized benchmark study", seed=seed)
    items = {item.key: item for item in add_default_items(study)}
    study.cases.set(cases.values())
    ReaderStudy.objects.filter(pk=study.pk).update(status=StudyStatus.READING)
    now = timezone.now()
    tasks, positions = {}, dict.fromkeys(readers, 0)
    for key in scores[["reader", "patient_id", "sequence", "version"]].drop_duplicates().itertuples(index=False):
        positions[key.reader] += 1
        tasks[tuple(key)] = ReadingTask(
            study=study, reader=readers[key.reader], position=positions[key.reader], case=cases[key.patient_id],
            sequence=key.sequence, version=key.version, status=TaskStatus.SUBMITTED, seconds_on_task=42.0,
            started_at=now, submitted_at=now,
        )
    ReadingTask.objects.bulk_create(tasks.values(), batch_size=2000)
    rows = [
        Score(task=tasks[(r.reader, r.patient_id, r.sequence, r.version)], panel="A", item=items[r.item], value=r.score)
        for r in scores.itertuples()
    ]
    Score.objects.bulk_create(rows, batch_size=2000)
    ScoreAudit.objects.bulk_create(
        [ScoreAudit(score=s, changed_by=s.task.reader, new_value=s.value) for s in rows], batch_size=2000
    )
    return study, len(rows)


def timed(func, repeat: int) -> tuple[float, object]:
    """Best of `repeat` wall times (the machine is shared), and the last value."""
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = func()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        configure(Path(folder))
        from django.test import Client

        from apps.accounts.models import Role, User
        from apps.analysis import exports, services

        start = time.perf_counter()
        study, n_scores = build_study(args.seed)
        setup = time.perf_counter() - start

        def service_export() -> int:
            buffer = io.StringIO()
            exports.write_csv(study, "long", buffer)
            return len(buffer.getvalue().encode("utf-8"))

        admin = User.objects.create(username="bench-admin", role=Role.ADMIN)
        client = Client(SERVER_NAME="localhost")
        client.force_login(admin)

        def http_export() -> int:
            response = client.get(f"/analysis/studies/{study.pk}/exports/long.csv")
            return sum(len(chunk) for chunk in response.streaming_content)

        in_memory = exports.frame(study, "long")

        def baseline() -> int:
            return len(in_memory.to_csv(index=False).encode("utf-8"))

        t_service, size = timed(service_export, args.repeat)
        t_http, http_size = timed(http_export, args.repeat)
        t_base, base_size = timed(baseline, args.repeat)
        t_analysis, (result, _) = timed(lambda: services.analyse_study(study), 1)

    print(f"machine: {platform.machine()} nproc={os.cpu_count()} {cpu_model()}; Python {platform.python_version()}")
    print(f"study: {n_scores} scores in the database (built in {setup:.1f} s)")
    print(f"long export, service (exports.write_csv):      {t_service:6.2f} s  {size / 1e6:.2f} MB")
    print(f"long export, HTTP view (streamed):             {t_http:6.2f} s  {http_size / 1e6:.2f} MB")
    print(f"baseline, pandas to_csv of the rows in memory: {t_base:6.2f} s  {base_size / 1e6:.2f} MB")
    print(f"ratio service / baseline: {t_service / t_base:.1f}")
    print(f"full analysis of the study (analyse_study):    {t_analysis:6.2f} s  "
          f"(run_analysis stages: {', '.join(f'{k} {v:.2f}' for k, v in result.timings.items())})")
    print(f"target: long export < 5 s -> {'met' if max(t_service, t_http) < 5 else 'NOT met'}")



if __name__ == "__main__":
    main()
