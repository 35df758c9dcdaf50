"""Reading progress per reader and per site, with an estimated time to completion for admins."""

from dataclasses import asdict, dataclass
from statistics import median

from apps.studies.models import ReaderStudy, TaskStatus


@dataclass
class Progress:
    label: str
    done: int
    total: int
    median_seconds: float | None
    eta_seconds: float | None

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def as_dict(self) -> dict:
        return {**asdict(self), "remaining": self.remaining}


def _reader_progress(label: str, done: int, total: int, seconds: list[float]) -> Progress:
    """ETA = remaining tasks x the reader's median time on task; unknown until they submitted something."""
    typical = median(seconds) if seconds else None
    if done == total:
        return Progress(label, done, total, typical, 0.0)
    return Progress(label, done, total, typical, None if typical is None else (total - done) * typical)


def study_progress(study: ReaderStudy) -> dict[str, list[Progress]]:
    """Progress by reader and by the readers' sites (site labels are the neutral pseudonyms).

    A site finishes when its slowest reader does (readers work in parallel), so its ETA is the largest of its
    readers' ETAs, unknown while any unfinished reader's is unknown.
    """
    rows = study.tasks.values_list(
        "reader__username", "reader__pseudonym", "reader__institution__pseudonym", "status", "seconds_on_task",
    )
    readers: dict[str, dict] = {}
    for username, pseudonym, site, status, seconds in rows:
        row = readers.setdefault(pseudonym or username, {"site": site, "done": 0, "total": 0, "seconds": []})
        row["total"] += 1
        if status == TaskStatus.SUBMITTED:
            row["done"] += 1
            if seconds > 0:
                row["seconds"].append(seconds)
    by_reader = {
        name: _reader_progress(name, row["done"], row["total"], row["seconds"])
        for name, row in sorted(readers.items())
    }
    by_site = []
    for site in sorted({row["site"] for row in readers.values()}):
        names = [name for name, row in readers.items() if row["site"] == site]
        members = [by_reader[name] for name in names]
        seconds = [s for name in names for s in readers[name]["seconds"]]
        etas = [p.eta_seconds for p in members]
        by_site.append(Progress(
            site, sum(p.done for p in members), sum(p.total for p in members),
            median(seconds) if seconds else None, None if None in etas else max(etas),
        ))
    return {"readers": list(by_reader.values()), "sites": by_site}
