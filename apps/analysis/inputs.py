"""Reading score, patient and ROI CSV files supplied by a person: refuse what is not a sane UTF-8 CSV, early."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

# Far above the paper's study (the long export of ~24,700 scores is ~4 MB); a larger file is a mistake or an attack.
MAX_CSV_BYTES = 200 * 1024 * 1024
SNIFF_BYTES = 64 * 1024


class InputError(ValueError):
    """A CSV that cannot be analysed, with a message meant for the person who gave it."""


def read_csv_file(path: Path, what: str, max_bytes: int = MAX_CSV_BYTES) -> pd.DataFrame:
    """Every column as text (ids like "007" keep their zeros; the analysis converts numbers itself).

    Empty cells and "NA" are missing values, as in R. Raises InputError for a missing, empty, huge, binary,
    non-UTF-8 or unparsable file.
    """
    if not path.is_file():
        raise InputError(f"{what}: {path} is not a file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{what}: {path} is empty")
    if size > max_bytes:
        raise InputError(f"{what}: {path} is {size / 1e6:.0f} MB, more than the {max_bytes / 1e6:.0f} MB allowed")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\x00" in head:
        raise InputError(f"{what}: {path} is not a text CSV (it contains NUL bytes)")
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            encoding="utf-8-sig",
            keep_default_na=False,
            na_values=["", "NA"],
            encoding_errors="strict",
        )
    except UnicodeDecodeError as exc:
        raise InputError(f"{what}: {path} is not UTF-8 encoded (byte {exc.start}); save it as UTF-8 CSV") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise InputError(f"{what}: {path} is not a readable CSV: {str(exc).strip()}") from exc
    if df.empty:
        raise InputError(f"{what}: {path} has a header but no rows")
    return df
