"""Clinical metadata (age, sex, tumour type, WHO grade, IDH, 1p/19q) imported from a site's CSV.

Rows name a case by its case code or by the original Patient ID, which is only hashed for the look-up and
never stored. The import is all or nothing: one bad row changes nothing and every problem is reported.
"""

import csv
import io
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from apps.imaging import deidentify
from apps.imaging.models import Case, Sex
from apps.institutions.models import Institution

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20000
FIELDS = ("age", "sex", "tumour_type", "who_grade", "idh_status", "codeletion_1p19q")
SEX_VALUES = {"f": Sex.FEMALE, "female": Sex.FEMALE, "m": Sex.MALE, "male": Sex.MALE, "o": Sex.OTHER,
              "other": Sex.OTHER, "": Sex.UNKNOWN, "unknown": Sex.UNKNOWN}
IDH_VALUES = {"mutant": "mutant", "mut": "mutant", "wildtype": "wildtype", "wild type": "wildtype",
              "wt": "wildtype", "unknown": "unknown", "": ""}
CODELETION_VALUES = {"codeleted": "codeleted", "yes": "codeleted", "intact": "intact", "no": "intact",
                     "unknown": "unknown", "": ""}


@dataclass
class ImportReport:
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def _parse_row(row: dict[str, str]) -> tuple[dict, list[str]]:
    values: dict = {}
    problems: list[str] = []
    if "age" in row:
        age = row["age"].strip()
        if age:
            if not age.isdigit() or not 0 <= int(age) <= 120:
                problems.append(f"age {age!r} is not a whole number of years between 0 and 120")
            else:
                values["age"] = int(age)
        else:
            values["age"] = None
    if "sex" in row:
        sex = row["sex"].strip().lower()
        if sex not in SEX_VALUES:
            problems.append(f"sex {row['sex']!r} is not one of F, M, O or empty")
        else:
            values["sex"] = SEX_VALUES[sex]
    if "tumour_type" in row:
        values["tumour_type"] = row["tumour_type"].strip()[:100]
    if "who_grade" in row:
        grade = row["who_grade"].strip().upper().removeprefix("WHO").strip()
        roman = {"I": "1", "II": "2", "III": "3", "IV": "4"}
        grade = roman.get(grade, grade)
        if grade and grade not in {"1", "2", "3", "4"}:
            problems.append(f"who_grade {row['who_grade']!r} is not 1-4")
        else:
            values["who_grade"] = int(grade) if grade else None
    for column, allowed in (("idh_status", IDH_VALUES), ("codeletion_1p19q", CODELETION_VALUES)):
        if column in row:
            value = row[column].strip().lower()
            if value not in allowed:
                problems.append(f"{column} {row[column]!r} is not one of {sorted(set(allowed.values()) - {''})}")
            else:
                values[column] = allowed[value]
    return values, problems


def _find_case(site: Institution | None, row: dict[str, str], cases) -> Case | None:
    code = (row.get("case_code") or "").strip()
    if code:
        return cases.filter(code=code).first()
    patient_id = (row.get("patient_id") or "").strip()
    if patient_id and site is not None:
        key = deidentify.patient_key(patient_id, site.code, settings.DEID_SECRET)
        return cases.filter(patient_key=key).first()
    return None


def import_case_metadata(csv_file: BinaryIO, site: Institution | None) -> ImportReport:
    """Applies a metadata CSV to one site's cases (all sites when `site` is None); all rows or none.

    Rows given by patient_id need a site, since the identifier is only meaningful within its hospital.
    """
    report = ImportReport()
    raw = csv_file.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        report.errors.append(f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB.")
        return report
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.errors.append("The file is not UTF-8 text.")
        return report
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip() for c in (reader.fieldnames or [])}
    if not columns & {"case_code", "patient_id"}:
        report.errors.append("The header needs a case_code or a patient_id column.")
        return report
    if not columns & set(FIELDS):
        report.errors.append(f"The header has none of the metadata columns {', '.join(FIELDS)}.")
        return report
    cases = Case.objects.filter(institution=site) if site is not None else Case.objects.all()
    updates: list[tuple[Case, dict]] = []
    for line, row in enumerate(reader, start=2):
        if line > MAX_ROWS + 1:
            report.errors.append(f"More than {MAX_ROWS} rows.")
            break
        row = {(k or "").strip(): (v or "") for k, v in row.items() if k is not None}
        case = _find_case(site, row, cases)
        values, problems = _parse_row(row)
        if case is None:
            problems.append("no case of yours matches this case_code or patient_id")
        for problem in problems:
            report.errors.append(f"Line {line}: {problem}.")
        if case is not None and not problems:
            updates.append((case, values))
    if report.errors:
        return report
    with transaction.atomic():
        for case, values in updates:
            for name, value in values.items():
                setattr(case, name, value)
            case.save(update_fields=list(values))
    report.updated = len(updates)
    return report
