"""The de-identification certificate of an upload, and the per-site summary for the privacy office.

Built only from what the database records about the upload: the evidence rows written at ingest (counts per
attribute and action, option codes), per-file outcomes (reason codes, never messages), series statuses and the
pixel text checks. No header value, file name or recognised text is ever read here, so none can be shown.

``certificate(batch)`` and ``site_summary(site)`` return JSON-able dicts; ``blocks(...)`` turns either into the
headings, paragraphs and tables that the HTML page and the PDF both render, so they say the same thing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version as package_version

from django.conf import settings
from django.utils import timezone
from pydicom.datadict import dictionary_description, keyword_for_tag

from apps.imaging import deidentify
from apps.imaging.models import FileOutcome, Series, SeriesStatus, UploadBatch
from apps.privacy.models import FindingStatus, SeriesDeidentification, SeriesTextCheck, TextFinding

CERTIFICATE_VERSION = 1

# What each rejection reason means, in the product's words (the per-file message is never copied: it is free text).
REJECTION_REASONS = {
    "not_dicom": "not a readable DICOM file",
    "truncated": "the file ends early",
    "no_pixel_data": "no pixel data",
    "undecodable_pixels": "pixel data could not be decoded",
    "not_mr": "not an MR image",
    "absurd_dimensions": "implausible image dimensions",
    "missing_uid": "a required UID is missing",
    "too_large": "larger than the file size limit",
    "mixed_patients": "a series that mixes patients",
    "duplicate_in_upload": "the same image twice in the upload",
    "inconsistent_geometry": "slices of one series with different geometry",
    "store_failed": "the series could not be stored; nothing of it was kept",
    "no_allow_list": "deny-by-default: its SOP class has no allow-list, so it cannot be de-identified in this mode",
}
HOLD_REASONS = {
    SeriesStatus.HELD_BURNED_IN: "burned-in text: the header flags it or OCR found text in the pixels",
    SeriesStatus.HELD_VENDOR: "a vendor-enhanced series waiting to be linked (not a privacy hold)",
}


def _date_handling() -> dict:
    if settings.DEID_DATE_MODE == "shift":
        return {
            "mode": "shift",
            "option": deidentify.MODIFIED_DATES,
            "description": (
                "Every date (DA) and the date part of every date-time (DT), at any depth, is moved back by the same "
                f"whole number of days for all images of one patient (between 1 and {settings.DEID_MAX_DATE_SHIFT_DAYS}"
                " days, drawn from a keyed hash of the patient, never stored in an image and never shown); intervals "
                "between a patient's examinations are kept. Times of day are kept. Patient's Birth Date and Birth "
                "Time are removed. Longitudinal Temporal Information Modified = MODIFIED."
            ),
        }
    return {
        "mode": "remove",
        "option": "",
        "description": (
            "Dates and times follow the basic profile's actions (most are emptied; a date the table marks D gets the "
            "dummy 19000101) and any date or time the table does not list is emptied as well. Patient's Birth Date "
            "and Birth Time are removed. Longitudinal Temporal Information Modified = REMOVED."
        ),
    }


UID_HANDLING = (
    "Every UID the profile lists (study, series, instance, frame of reference, references to other images, at any "
    "depth, and the file meta's Media Storage SOP Instance UID) is replaced by 2.25.<integer>, a UUID derived with "
    "HMAC-SHA256 from the original UID under this installation's de-identification key. The same original UID gives "
    "the same new UID in every upload, so a study's references stay consistent; without the key the original cannot "
    "be computed back. The key is not in this certificate. A blanked image gets a new SOP Instance UID of its own."
)
PSEUDONYM_HANDLING = (
    "Patient's Name and Patient ID become the case's pseudonymous code (C-XXXXXXXX, random, says nothing about the "
    "patient, the site or the upload order). The original Patient ID is kept only as a keyed hash (HMAC-SHA256, per "
    "site) so a later upload of the same patient finds its case; it is never stored or shown in clear."
)
STAGING_HANDLING = (
    "Uploaded files are copied to a staging folder outside the image store, de-identified in memory, and the staging "
    "folder is deleted when every file has an outcome; original file and folder names are replaced by neutral names "
    "unless they look like plain image numbers."
)


def not_done(deny_by_default: bool = False, defaced: bool = False) -> list[str]:
    """What this installation does NOT do, said plainly: a privacy office signs against this list."""
    unlisted = (
        "Deny-by-default: only attributes on the allow-list of the image's SOP class survive, so a public attribute "
        "the profile's table does not list is removed; the values of the allow-listed attributes that the table keeps "
        "(acquisition parameters, geometry, manufacturer and model) are kept without being read."
        if deny_by_default else
        "Public attributes that the profile's table does not list are kept as they are (the basic profile's rule), "
        "without looking at their values; they are counted under 'kept: not in the profile's table' below."
    )
    faces = (
        "Faces and ears are removed only from 3D head series (MR Acquisition Type 3D) of sites that ask for it, by a "
        "geometric rule checked on phantoms (no brain voxel touched, the face region removed), not on real faces: a "
        "head shaped unlike the rule expects may keep part of its face; 2D series are not defaced, though a stack of "
        "thin 2D slices can show a face profile too."
        if defaced else
        "Faces are not removed: 3D head series can be rendered into a face (Clean Recognizable Visual Features, "
        "113102, is not applied)."
    )
    return [
        faces,
        "Burned-in text is looked for by OCR (Tesseract) in every image, whatever the header says, but OCR misses "
        "some text: on the generated benchmark corpus (benchmarks/RESULTS.md, rule lines-2) it found 72 % of the "
        "slices with text (80-93 % of text in corners and edges, half of the text over the anatomy; small and dark "
        "text is missed most); text it misses is not held and reaches readers. "
        "Only the text's boxes are blanked, by a coordinator's decision; a coordinator may instead confirm that "
        "what OCR found is no identifying text (anatomy or noise read as letters), and the images are then released "
        "unchanged; the words OCR reads are never stored.",
        "Private elements are removed whole, their content is not inspected (Retain Safe Private, 113111, is not "
        "applied), so free text in them is gone but was never read.",
        unlisted,
        "Descriptions (series, study, protocol, code meanings) are kept or blanked by a vocabulary rule, not read by "
        "a person.",
        "This is pseudonymisation: the installation keeps the keys that map a patient to a case (keyed hashes), so "
        "the site can re-identify its own patients; the data are not anonymous in the GDPR sense.",
        "Staged originals are deleted with the filesystem's ordinary delete, not overwritten.",
        "Clinical metadata that coordinators enter (age, sex, tumour type, grade) is stored with the case, apart "
        "from the images.",
    ]


def attribute_name(key: str) -> tuple[str, str, str]:
    """(tag, keyword, name) of an evidence key ('00100010'; 'ggggFFFF' for a private group)."""
    tag = int(key, 16)
    group, element = tag >> 16, tag & 0xFFFF
    text = f"({group:04X},{element:04X})"
    if group & 1 and element == 0xFFFF:
        return f"({group:04X},xxxx)", "", f"Private elements of group {group:04X}"
    if element == 0:
        return text, "", f"Group length of group {group:04X}"
    try:
        return text, keyword_for_tag(tag) or "", dictionary_description(tag)
    except KeyError:
        return text, "", "Unknown public attribute"


def _merge(records) -> tuple[dict[str, Counter], Counter, int]:
    actions: dict[str, Counter] = {}
    codes: Counter = Counter()
    instances = 0
    for record in records:
        instances += record.instances
        codes.update(record.method_codes)
        for key, counts in record.action_counts.items():
            actions.setdefault(key, Counter()).update(counts)
    return actions, codes, instances


def _action_rows(actions: dict[str, Counter]) -> list[dict]:
    rows = []
    for key in sorted(actions):
        tag, keyword, name = attribute_name(key)
        rows.append({"tag": tag, "keyword": keyword, "name": name, "actions": dict(sorted(actions[key].items()))})
    return rows


def _options(codes: Counter, instances: int) -> list[dict]:
    how = {
        deidentify.PROFILE_CODE: "attribute actions of PS3.15 Table E.1-1, applied at every depth",
        deidentify.CLEAN_DESCRIPTORS: "descriptions kept only when every word is sequence jargon, else blanked",
        deidentify.MODIFIED_DATES: "dates shifted per patient (see Dates)",
        deidentify.CLEAN_PIXEL_DATA: "burned-in text boxes blanked by a coordinator into a new instance",
        deidentify.CLEAN_RECOGNIZABLE_VISUAL_FEATURES: (
            "face and ears of 3D head series cut at upload: everything beyond a plane tangent to a brain estimate made "
            "from the image (anterior-inferior) and beyond two sagittal planes 10 mm outside it (ears); the DL versions "
            "get the same voxels cut"),
    }
    return [
        {"code": code, "scheme": "DCM", "meaning": deidentify.OPTION_CODES[code], "instances": codes[code],
         "of_instances": instances, "how": how.get(code, "")}
        for code in deidentify.OPTION_CODES if codes.get(code)
    ]


def _profile() -> dict:
    return {
        "standard": "DICOM PS3.15 Annex E",
        "code": deidentify.PROFILE_CODE,
        "meaning": deidentify.OPTION_CODES[deidentify.PROFILE_CODE],
        "table": deidentify.action_table()["source"],
        "table_sha256": deidentify.action_table_sha256(),
        "table_note": "sha256 of the attribute-action table as applied, as canonical JSON (sorted keys, no spaces); "
                      "the table itself: GET /api/privacy/action-table/",
        "software": {"readerstudy de-identification": f"certificate v{CERTIFICATE_VERSION}",
                     "pydicom": package_version("pydicom"), "dicom-anonymizer": package_version("dicom-anonymizer")},
    }


def _deny_by_default(records: list[SeriesDeidentification], instances: int) -> dict:
    """Whether the stored instances were de-identified deny-by-default, and under which allow-list(s)."""
    lists = sorted({(r.allow_list, r.allow_list_sha256) for r in records if r.allow_list})
    return {
        "applied": bool(lists),
        "instances": sum(r.instances for r in records if r.allow_list), "of_instances": instances,
        "allow_lists": [{"name": name, "sha256": sha} for name, sha in lists],
        "code": "", "code_note": "DICOM defines no de-identification method code for an allow-list, so the De-"
                                 "identification Method Code Sequence of the images does not name it: this document "
                                 "is its only record.",
        "note": "only attributes on the allow-list of the image's SOP class survive, at any depth; all others "
                "(private ones included) are removed before the profile acts; sha256 of the list as canonical JSON; "
                "the list itself: GET /api/privacy/allow-list/",
    }


def _method(codes: Counter, instances: int, records: list[SeriesDeidentification]) -> dict:
    """What both documents say about the method: profile and table, options, deny-by-default, UIDs, dates, identity,
    staging."""
    return {
        "profile": _profile(), "options": _options(codes, instances),
        "deny_by_default": _deny_by_default(records, instances), "uids": UID_HANDLING,
        "dates": _date_handling(), "pseudonyms": PSEUDONYM_HANDLING, "staging": STAGING_HANDLING,
    }


def _attributes(actions: dict[str, Counter], records: list[SeriesDeidentification]) -> dict:
    """What both documents end with: the actions per attribute, their totals, and what is not done."""
    return {
        "action_totals": _totals(actions), "actions": _action_rows(actions), "action_labels": deidentify.ACTION_LABELS,
        "not_done": not_done(deny_by_default=bool(records) and all(r.allow_list for r in records),
                             defaced=any(r.method_codes.get(deidentify.CLEAN_RECOGNIZABLE_VISUAL_FEATURES)
                                         for r in records)),
    }


def _series_rows(records: list[SeriesDeidentification], held_at_upload: dict[int, str]) -> list[dict]:
    rows = []
    for record in records:
        series = record.series
        rows.append({
            "case": series.case.code, "series": series.pk, "sequence": series.sequence,
            "instances": record.instances,
            "method_codes": sorted(record.method_codes, key=list(deidentify.OPTION_CODES).index),
            "status": series.status, "status_display": series.get_status_display(),
            "held_at_upload": held_at_upload.get(series.pk, ""), "hold_reason": series.hold_reason,
        })
    return rows


def certificate(batch: UploadBatch) -> dict:
    """The certificate of one upload as a JSON-able dict (never an original value)."""
    records = list(
        SeriesDeidentification.objects.filter(batch=batch).select_related("series__case").order_by("series__pk")
    )
    actions, codes, instances = _merge(records)
    results = batch.results.select_related("instance")
    rejected = Counter(r.reason or "rejected" for r in results if r.outcome == FileOutcome.REJECTED)
    held_at_upload: dict[int, str] = {}
    for result in results:
        if result.held and result.instance is not None:
            held_at_upload[result.instance.series_id] = result.reason
    series_rows = _series_rows(records, held_at_upload)
    held = [row for row in series_rows if row["held_at_upload"] or row["status"].startswith("held_")]
    return {
        "kind": "upload",
        "title": f"De-identification certificate of upload {batch.pk}",
        "certificate_version": CERTIFICATE_VERSION,
        "generated_at": timezone.now().isoformat(timespec="seconds"),
        "upload": {
            "id": batch.pk, "site": batch.institution.code, "site_name": batch.institution.name,
            "channel": batch.channel, "status": batch.state, "status_display": batch.get_state_display(),
            "received_at": batch.created_at.isoformat(timespec="seconds"),
            "finished_at": batch.finished_at.isoformat(timespec="seconds") if batch.finished_at else None,
        },
        **_method(codes, instances, records),
        "files": {
            "received": batch.file_count, "stored": batch.accepted_count, "already_stored": batch.duplicate_count,
            "rejected": batch.rejected_count, "held": batch.held_count, "instances_with_evidence": instances,
        },
        "rejected": [
            {"reason": reason, "files": count, "meaning": REJECTION_REASONS.get(reason, _archive_meaning(reason))}
            for reason, count in sorted(rejected.items())
        ],
        "held": [
            {**row, "why": row["hold_reason"] or HOLD_REASONS.get(row["held_at_upload"] or row["status"],
                                                                 row["status_display"])}
            for row in held
        ],
        "pixel_text": pixel_text(batch),
        "series": series_rows,
        **_attributes(actions, records),
    }


def pixel_text(batch: UploadBatch) -> dict:
    """The burned-in text check of the upload's images: checked, with text, engine, blanked, rejected, open."""
    checks = SeriesTextCheck.objects.filter(record__batch=batch)
    findings = TextFinding.objects.filter(batch=batch)
    return {**_text_counts(checks, findings),
            "blanked_sop_uids": list(findings.filter(status=FindingStatus.BLANKED).values_list("blanked_sop_uid",
                                                                                               flat=True))}


def site_pixel_text(site) -> dict:
    """The burned-in text check of every image a site uploaded: checked, with text, and what became of the findings
    (still held, blanked, dismissed, rejected)."""
    return _text_counts(SeriesTextCheck.objects.filter(record__batch__institution=site),
                        TextFinding.objects.filter(series__case__institution=site))


def _text_counts(checks, findings) -> dict:
    by_status = {status: findings.filter(status=status).count() for status in FindingStatus.values}
    engines = sorted({c.engine for c in checks if c.engine})
    unavailable = sorted({c.unavailable for c in checks if c.unavailable})
    return {
        "checked": sum(c.checked for c in checks), "with_text": sum(c.with_text for c in checks),
        "engine": ", ".join(engines), "not_checked_because": unavailable,
        "seconds": round(sum(c.seconds for c in checks), 2),
        "blanked": by_status[FindingStatus.BLANKED], "rejected": by_status[FindingStatus.REJECTED],
        "dismissed": by_status[FindingStatus.DISMISSED], "open": by_status[FindingStatus.OPEN],
    }


def _archive_meaning(reason: str) -> str:
    if reason.startswith("archive_"):
        return "an archive refused on arrival (" + reason.removeprefix("archive_").replace("_", " ") + ")"
    return "rejected"


def _totals(actions: dict[str, Counter]) -> dict[str, int]:
    totals: Counter = Counter()
    for counts in actions.values():
        totals.update(counts)
    return {action: totals[action] for action in deidentify.ACTION_LABELS if totals.get(action)}


def site_summary(site) -> dict:
    """Every upload of one site: what was stored, held and rejected, which options, and one merged action table."""
    batches = list(UploadBatch.objects.filter(institution=site).order_by("created_at"))
    records = list(SeriesDeidentification.objects.filter(batch__institution=site))
    actions, codes, instances = _merge(records)
    per_batch: dict[int, Counter] = {}
    for record in records:
        per_batch.setdefault(record.batch_id, Counter()).update(record.method_codes)
    held_series = Series.objects.filter(case__institution=site, status__startswith="held_").count()
    return {
        "kind": "site",
        "title": f"De-identification summary of site {site.code}",
        "certificate_version": CERTIFICATE_VERSION,
        "generated_at": timezone.now().isoformat(timespec="seconds"),
        "site": {"code": site.code, "name": site.name},
        **_method(codes, instances, records),
        "totals": {
            "uploads": len(batches), "received": sum(b.file_count for b in batches),
            "stored": sum(b.accepted_count for b in batches), "rejected": sum(b.rejected_count for b in batches),
            "held": sum(b.held_count for b in batches), "instances_with_evidence": instances,
            "cases": site.cases.count(), "series_held_now": held_series,
        },
        "uploads": [
            {"id": b.pk, "received_at": b.created_at.isoformat(timespec="seconds"), "channel": b.channel,
             "status_display": b.get_state_display(), "received": b.file_count, "stored": b.accepted_count,
             "already_stored": b.duplicate_count, "rejected": b.rejected_count, "held": b.held_count,
             "method_codes": [c for c in deidentify.OPTION_CODES if per_batch.get(b.pk, {}).get(c)]}
            for b in batches
        ],
        "pixel_text": site_pixel_text(site),
        **_attributes(actions, records),
    }


@dataclass
class Block:
    """One piece of the rendered document: a heading, a paragraph, a list or a table."""

    kind: str  # "h1", "h2", "p", "list", "table"
    text: str = ""
    items: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    widths: list[float] = field(default_factory=list)


def _actions_text(counts: dict[str, int], labels: dict[str, str]) -> str:
    return "; ".join(f"{labels.get(action, action)}: {n}" for action, n in counts.items())


def blocks(document: dict) -> list[Block]:
    """The certificate or the site summary as blocks, in reading order (the HTML page and the PDF use these)."""
    labels = document["action_labels"]
    out = [Block("h1", document["title"])]
    if document["kind"] == "upload":
        u, f = document["upload"], document["files"]
        out.append(Block("p", f"Site {u['site_name']} ({u['site']}), received {u['received_at']} via {u['channel']}, "
                              f"finished {u['finished_at'] or 'not yet'}: {u['status_display']}. "
                              f"Generated {document['generated_at']}."))
        out.append(Block("table", header=["received", "stored", "already stored", "rejected", "held for review",
                                          "instances with evidence"],
                         rows=[[str(f["received"]), str(f["stored"]), str(f["already_stored"]), str(f["rejected"]),
                                str(f["held"]), str(f["instances_with_evidence"])]]))
    else:
        s, t = document["site"], document["totals"]
        out.append(Block("p", f"Site {s['name']} ({s['code']}): every upload, for the privacy office. "
                              f"Generated {document['generated_at']}."))
        out.append(Block("table", header=["uploads", "files received", "stored", "rejected", "held at upload",
                                          "cases", "series held now"],
                         rows=[[str(t["uploads"]), str(t["received"]), str(t["stored"]), str(t["rejected"]),
                                str(t["held"]), str(t["cases"]), str(t["series_held_now"])]]))
    p = document["profile"]
    out.append(Block("h2", "Profile and options"))
    out.append(Block("p", f"{p['standard']}: {p['meaning']} ({p['code']}). Attribute-action table: {p['table']}, "
                          f"sha256 {p['table_sha256']} ({p['table_note']})."))
    out.append(Block("table", header=["code", "option", "instances", "how"], widths=[0.1, 0.35, 0.12, 0.43],
                     rows=[[o["code"], o["meaning"], f"{o['instances']} of {o['of_instances']}", o["how"]]
                           for o in document["options"]]))
    d = document["deny_by_default"]
    if d["applied"]:
        lists = "; ".join(f"{a['name']}, sha256 {a['sha256']}" for a in d["allow_lists"])
        out.append(Block("p", f"Deny-by-default on {d['instances']} of {d['of_instances']} instances: {d['note']}. "
                              f"Allow-list: {lists}. {d['code_note']}"))
    else:
        out.append(Block("p", "Deny-by-default was not applied: attributes the profile's table does not list were "
                              "kept (see What is NOT done)."))
    out.append(Block("h2", "UIDs"))
    out.append(Block("p", document["uids"]))
    out.append(Block("h2", "Dates"))
    out.append(Block("p", document["dates"]["description"]))
    out.append(Block("h2", "Patient identity"))
    out.append(Block("p", document["pseudonyms"]))
    out.append(Block("p", document["staging"]))
    if document["kind"] == "upload":
        out.append(Block("h2", "Files rejected and why"))
        if document["rejected"]:
            out.append(Block("table", header=["reason", "files", "meaning"], widths=[0.3, 0.1, 0.6],
                             rows=[[r["reason"], str(r["files"]), r["meaning"]] for r in document["rejected"]]))
        else:
            out.append(Block("p", "No file was rejected."))
        t = document["pixel_text"]
        out.append(Block("h2", "Burned-in text in the pixels"))
        checked = (f"{t['checked']} image(s) read by OCR ({t['engine']}, {t['seconds']} s); text found in "
                   f"{t['with_text']}." if t["checked"] else "No image was read by OCR.")
        if t["not_checked_because"]:
            checked += " Not checked: " + "; ".join(t["not_checked_because"]) + " (those series are held)."
        out.append(Block("p", checked + f" Images blanked by a coordinator into new instances (113101): {t['blanked']};"
                              f" in rejected series: {t['rejected']}; confirmed by a coordinator to hold no "
                              f"identifying text (released as they are): {t['dismissed']}; waiting for the "
                              f"coordinator: {t['open']}. "
                              "The words OCR read are never stored."))
        out.append(Block("h2", "Series held from readers and why"))
        if document["held"]:
            out.append(Block("table", header=["case", "series", "sequence", "images", "held because", "now"],
                             widths=[0.14, 0.08, 0.1, 0.08, 0.4, 0.2],
                             rows=[[h["case"], str(h["series"]), h["sequence"], str(h["instances"]), h["why"],
                                    h["status_display"]] for h in document["held"]]))
        else:
            out.append(Block("p", "No series of this upload was held."))
        out.append(Block("h2", "Series stored"))
        out.append(Block("table", header=["case", "series", "sequence", "images", "method codes", "status"],
                         widths=[0.14, 0.08, 0.1, 0.08, 0.35, 0.25],
                         rows=[[r["case"], str(r["series"]), r["sequence"], str(r["instances"]),
                                " ".join(r["method_codes"]), r["status_display"]] for r in document["series"]]))
    else:
        out.append(Block("h2", "Uploads"))
        out.append(Block("table", header=["upload", "received", "channel", "status", "files", "stored", "rejected",
                                          "held", "method codes"],
                         widths=[0.07, 0.17, 0.08, 0.2, 0.06, 0.07, 0.08, 0.06, 0.21],
                         rows=[[str(u["id"]), u["received_at"], u["channel"], u["status_display"], str(u["received"]),
                                str(u["stored"]), str(u["rejected"]), str(u["held"]), " ".join(u["method_codes"])]
                               for u in document["uploads"]]))
        t = document["pixel_text"]
        out.append(Block("h2", "Burned-in text in the pixels"))
        out.append(Block("table", header=["images read by OCR", "with text", "held now (waiting for the coordinator)",
                                          "blanked (113101)", "dismissed (no identifying text)", "in rejected series"],
                         widths=[0.17, 0.11, 0.22, 0.16, 0.19, 0.15],
                         rows=[[str(t["checked"]), str(t["with_text"]), str(t["open"]), str(t["blanked"]),
                                str(t["dismissed"]), str(t["rejected"])]]))
        if t["not_checked_because"]:
            out.append(Block("p", "Not checked: " + "; ".join(t["not_checked_because"]) + " (those series are held)."))
    out.append(Block("h2", "What was done to each attribute"))
    out.append(Block("p", "Counts are numbers of image files (an attribute inside a sequence counts once per "
                          "occurrence). Values are never recorded. Totals: "
                          + _actions_text(document["action_totals"], labels) + "."))
    out.append(Block("table", header=["tag", "attribute", "action: files"], widths=[0.14, 0.38, 0.48],
                     rows=[[a["tag"], a["keyword"] or a["name"], _actions_text(a["actions"], labels)]
                           for a in document["actions"]]))
    out.append(Block("h2", "What is NOT done"))
    out.append(Block("list", items=document["not_done"]))
    return out
