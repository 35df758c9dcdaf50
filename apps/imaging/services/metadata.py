"""Clinical metadata (age, sex, tumour type, WHO grade, IDH, 1p/19q) imported from a site's CSV.

Rows name a case by its case code or by the original Patient ID, which is only hashed for the look-up and
never stored. The import is all or nothing: one bad row changes nothing and every problem of every row is
reported with its line, so the coordinator corrects the file and imports it again (re-importing is harmless).
A partial import would leave a site's cases half updated, and Table 1 would mix old and new values unnoticed.
Values are checked against the same vocabularies and ranges as the model, the API, the admin and the database.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.imaging import deidentify
from apps.imaging.models import AGE_MAX, WHO_GRADES, Case, Sex
from apps.institutions.models import Institution

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20000
WHOLE_NUMBER = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses
TUMOUR_TYPE_MAX = Case._meta.get_field("tumour_type").max_length
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
            if not WHOLE_NUMBER.fullmatch(age) or not 0 <= int(age) <= AGE_MAX:
                problems.append(f"age {age!r} is not a whole number of years between 0 and {AGE_MAX}")
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
        tumour_type = " ".join(row["tumour_type"].split())
        if len(tumour_type) > TUMOUR_TYPE_MAX:
            problems.append(f"tumour_type is longer than {TUMOUR_TYPE_MAX} characters")
        else:
            values["tumour_type"] = tumour_type
    if "who_grade" in row:
        grade = row["who_grade"].strip().upper().removeprefix("WHO").strip()
        roman = {"I": "1", "II": "2", "III": "3", "IV": "4"}
        grade = roman.get(grade, grade)
        if grade and grade not in {str(g) for g in WHO_GRADES}:
            problems.append(f"who_grade {row['who_grade']!r} is not 1-4 (or I-IV)")
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


def _model_problems(case: Case, values: dict) -> list[str]:
    """The model's own field checks on the new values: the CSV can never store what the admin would refuse."""
    candidate = Case(**{f.attname: getattr(case, f.attname) for f in Case._meta.concrete_fields})
    for name, value in values.items():
        setattr(candidate, name, value)
    try:
        candidate.clean_fields(exclude=[f.name for f in Case._meta.fields if f.name not in values])
    except ValidationError as exc:
        return [f"{name} {'; '.join(messages)}" for name, messages in exc.message_dict.items()]
    return []


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
    first_line: dict[int, int] = {}
    for line, row in enumerate(reader, start=2):
        if line > MAX_ROWS + 1:
            report.errors.append(f"More than {MAX_ROWS} rows.")
            break
        row = {(k or "").strip(): (v or "") for k, v in row.items() if k is not None}
        case = _find_case(site, row, cases)
        values, problems = _parse_row(row)
        if case is None:
            problems.append("no case of yours matches this case_code or patient_id")
        elif case.pk in first_line:
            problems.append(f"case {case.code} is already given on line {first_line[case.pk]}")
        else:
            first_line[case.pk] = line
            if not problems:
                problems += _model_problems(case, values)
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
