"""De-identification of one DICOM dataset, after DICOM PS3.15 Annex E.

Profile and options implemented (and declared in the header, DCM codes in brackets):

- Basic Application Level Confidentiality Profile (113100). The per-attribute actions D / Z / X / U and the
  combined ones come from the table that ships with ``dicom-anonymizer`` (``dicomfields_2026c``, generated
  from the standard's Table E.1-1); this module only applies them. Combined actions resolve to the least
  destructive one that keeps an MR image conformant: Z/D, X/Z, X/Z/D -> Z; X/D -> X; X/Z/U* -> keep the
  sequence and remap the instance UIDs inside it. A sequence under D keeps its items, which are cleaned.
- Clean Descriptors Option (113105): Series Description, Protocol Name, Study Description and Performed
  Procedure Step Description survive only when every token looks like sequence jargon (``t2_tse_tra``,
  ``3D BRAVO +C``); anything else (names, ids, dates, free text) blanks the whole value. Code Meaning is
  cleaned the same way at any depth (Procedure Code Sequence and friends are kept by the table). The sequence
  classifier therefore runs on the ORIGINAL header, before this module touches it.
- Retain Longitudinal Temporal Information with Modified Dates Option (113107) when ``date_shift_days`` is
  an int: every DA and DT, at any depth, moves by that many days (times of day are kept, whole-day shift);
  Longitudinal Temporal Information Modified = MODIFIED. With ``date_shift_days=None`` dates and times
  follow the basic profile, and any date or time the table does not list is emptied as well;
  Longitudinal Temporal Information Modified = REMOVED (a date the table marks D gets the dummy 19000101).
  Patient's Birth Date and Time are always removed.
- Clean Pixel Data Option (113101), per instance: declared only on an instance whose burned-in text a
  coordinator had blanked (``apps/privacy``: OCR finds the text, the boxes are blanked into a new instance with a
  new SOP Instance UID, Burned In Annotation = NO). An image OCR found no text in does not claim it: nothing was
  removed, and OCR is a check, not a proof. Callers pass extra option codes in ``options``; every code any
  option adds is listed in ``OPTION_CODES``, so a new option declares itself in the header the same way.
- Not implemented, so their attributes follow the basic profile: Retain Safe Private (every private element
  is removed), Retain Device Identity, Retain Institution Identity, Retain Patient Characteristics (age,
  sex, size, weight are removed; the study takes them from the coordinator's clinical metadata), Retain UIDs
  (instance UIDs are remapped with a keyed hash, so the same input UID gives the same output UID across
  uploads and a study's references stay consistent), Clean Structured Content, Clean Graphics.
  Images flagged Burned In Annotation = YES are reported so the caller can hold them for review.
- Deny-by-default (``deny_by_default=True``; no DICOM code exists for it, so only the certificate records it): before
  the profile acts, every attribute at any depth whose tag is not on the allow-list of the instance's SOP class
  (``apps.imaging.deid_allow_list``, versioned and hashed like the action table) is removed, so a public attribute
  the table does not list (which the basic profile keeps) goes too. A SOP class without a list raises
  ``NoAllowList``.

Every dataset's actions are counted per attribute (``DeidResult.actions``: (tag, action) -> count, never a
value), so the de-identification certificate can say what was done to each attribute of an upload.

Patient's Name and Patient ID become the pseudonymous case code. The table's masked entries (curve data
50xx, overlay data and comments 60xx) and retired group lengths are deleted. In the file meta the AE titles
and private information go, Media Storage SOP Instance UID follows the remapped SOP Instance UID and the
implementation UID becomes pydicom's.

Speed: the work is set arithmetic on the tags of each dataset level; untouched elements stay raw and are
written back without being decoded, and replaced values are stored as already-encoded raw elements.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections import Counter
from functools import cache, lru_cache
from importlib.metadata import version as package_version
from typing import NamedTuple

from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from pydicom import __version__ as pydicom_version
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_sequence
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from apps.imaging.deid_allow_list import allowed_tags

logger = logging.getLogger(__name__)

ANNEX_E_TABLE = "dicomfields_2026c"

# Resolved actions.
_DELETE, _EMPTY, _DUMMY, _REMAP, _KEEP = "X", "Z", "D", "U", "K"
_RESOLVED = {
    "D_TAGS": _DUMMY,
    "Z_TAGS": _EMPTY,
    "X_TAGS": _DELETE,
    "U_TAGS": _REMAP,
    "Z_D_TAGS": _EMPTY,
    "X_Z_TAGS": _EMPTY,
    "X_D_TAGS": _DELETE,
    "X_Z_D_TAGS": _EMPTY,
    "X_Z_U_STAR_TAGS": _KEEP,
}


def _load_table() -> tuple[dict[int, str], tuple[tuple[int, int, str], ...]]:
    """Plain tags map to an action; masked repeater-group entries (curves, overlays) are kept apart."""
    table = dicom_anonymization_database_selector(ANNEX_E_TABLE)
    actions: dict[int, str] = {}
    masked: list[tuple[int, int, str]] = []
    for category, action in _RESOLVED.items():
        for entry in table[category]:
            if len(entry) == 2:
                actions[(entry[0] << 16) | entry[1]] = action
            else:
                group, elem, group_mask, elem_mask = entry
                masked.append(((group << 16) | elem, (group_mask << 16) | elem_mask, action))
    return actions, tuple(masked)


_ACTIONS, _MASKED = _load_table()
_MASKED_GROUP_PREFIXES = frozenset(value >> 24 for value, _, _ in _MASKED)


def _tags_with_vr(*vrs: str) -> frozenset[int]:
    return frozenset(tag for tag, entry in DicomDictionary.items() if entry[0] in vrs)


_SQ_TAGS = _tags_with_vr("SQ")
_DATE_TAGS = _tags_with_vr("DA", "DT")
_TIME_TAGS = _tags_with_vr("TM")

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
_ALWAYS_REMOVED = frozenset({0x00100030, 0x00100032})  # Patient's Birth Date, Patient's Birth Time
_CASE_CODE_TAGS = frozenset({PATIENT_NAME, PATIENT_ID})
CLEANED_DESCRIPTORS = frozenset(
    {
        0x0008103E,  # Series Description
        0x00181030,  # Protocol Name
        0x00081030,  # Study Description
        0x00400254,  # Performed Procedure Step Description
        0x00080104,  # Code Meaning, at any depth: sites put free text into code sequences the table keeps
    }
)
_HANDLED_APART = _CASE_CODE_TAGS | CLEANED_DESCRIPTORS | _ALWAYS_REMOVED
_ACTION_TAGS = frozenset(_ACTIONS) - _HANDLED_APART

_FILE_META_REMOVED = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)

_DUMMY_VALUES = {
    "PN": "ANONYMOUS",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000D",
    "IS": "0",
    "DS": "0",
    "UR": "",
}
_BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})

# Clean Descriptors: a descriptor survives only when every token is sequence jargon.
_DESCRIPTOR_CHARSET = re.compile(r"^[A-Za-z0-9 _\-+/.,:()*#=&]*$")
_TOKEN_SPLIT = re.compile(r"[ _\-+/.,:()*#=&]+")
_SHORT_CODED_TOKEN = re.compile(r"^(?=(?:[a-z]*\d){1,2}[a-z]*$)[a-z0-9]{1,8}$")
_VOCABULARY_TEXT = """
    t1 t2 pd t1w t2w pdw flair tse fse frfse se ir tir tirm stir dark fluid darkfluid mprage mp rage spgr fspgr
    bravo cube space vista tfe tfl ffe gre fl flash vibe lava epi dwi adc trace diff dti swi swan swip venobold
    tof asl pcasl perfusion perf dsc dce mip mpr cine bold blade propeller haste ssfse fiesta ciss drive
    ax axi axial tra trans transverse cor coronal sag sagittal obl oblique iso 2d 3d hr hires high res
    post pre c gd km kontrast contrast ce enh w wo with without and fs fatsat fat sat spir spair water
    sense asset grappa ipat arc cs compressed sensing mb sms
    brain head neuro cranial mri mr routine standard protocol loc localizer localiser scout survey plane
    tri pl 3pl ref calibration cal nd norm filt ms dynamic dyn
    thin thick slice slices mm s p a b msec multi single shot
    of for the exam examination imaging magnetic resonance iv gadolinium tumour tumor glioma follow up
"""
DESCRIPTOR_VOCABULARY = frozenset(_VOCABULARY_TEXT.split())

_CODING_SCHEME = "DCM"
PROFILE_CODE = "113100"
CLEAN_PIXEL_DATA = "113101"
CLEAN_RECOGNIZABLE_VISUAL_FEATURES = "113102"
CLEAN_DESCRIPTORS = "113105"
MODIFIED_DATES = "113107"
# Every code this product may declare in De-identification Method Code Sequence, in the order it lists them
# (PS3.16 CID 7050; meanings as the standard spells them).
OPTION_CODES: dict[str, str] = {
    PROFILE_CODE: "Basic Application Confidentiality Profile",
    CLEAN_PIXEL_DATA: "Clean Pixel Data Option",
    CLEAN_RECOGNIZABLE_VISUAL_FEATURES: "Clean Recognizable Visual Features Option",
    CLEAN_DESCRIPTORS: "Clean Descriptors Option",
    MODIFIED_DATES: "Retain Longitudinal Temporal Information Modified Dates Option",
}

# The actions counted per attribute (DeidResult.actions): the table's own letters, and what is done apart.
REMOVED, EMPTIED, DUMMY, UID_REMAPPED, SEQUENCE_CLEANED = "X", "Z", "D", "U", "K"
PSEUDONYM = "pseudonym"
DATE_SHIFTED = "date_shifted"
DESCRIPTOR_KEPT = "descriptor_kept"
DESCRIPTOR_BLANKED = "descriptor_blanked"
KEPT = "kept"
PRIVATE_REMOVED = "private_removed"
ADDED = "added"
NOT_ALLOWED = "not_allowed"
ACTION_LABELS = {
    REMOVED: "removed (X)",
    EMPTIED: "emptied (Z)",
    DUMMY: "replaced by a dummy value (D)",
    UID_REMAPPED: "UID replaced by a keyed hash (U)",
    SEQUENCE_CLEANED: "sequence kept, its items cleaned",
    PSEUDONYM: "replaced by the pseudonymous case code",
    DATE_SHIFTED: "date shifted by the case's offset",
    DESCRIPTOR_KEPT: "kept: every word is sequence jargon (Clean Descriptors)",
    DESCRIPTOR_BLANKED: "blanked: not only sequence jargon (Clean Descriptors)",
    KEPT: "kept: not in the profile's table",
    PRIVATE_REMOVED: "private element removed",
    ADDED: "added by de-identification",
    NOT_ALLOWED: "removed: not on the allow-list (deny-by-default)",
}


class DeidResult(NamedTuple):
    """What the caller needs after de-identification; every UID here is already remapped.

    ``actions`` counts (tag, action) over every level of the dataset: tags as ints, private elements under
    their group with element 0xFFFF (one key per private group), never a value.
    """

    burned_in: bool
    study_uid: str
    series_uid: str
    sop_uid: str
    actions: Counter
    method_codes: tuple[str, ...]


class _Context(NamedTuple):
    case_code: str
    date_shift_days: int | None
    uid_secret: str
    actions: Counter
    allowed: frozenset[int] | None


@lru_cache(maxsize=65536)
def remap_uid(uid: str, secret: str) -> str:
    """Keyed, deterministic UID replacement: a UUID-derived ``2.25.<int>`` (at most 44 characters)."""
    digest = hmac.new(secret.encode(), uid.strip("\x00 ").encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:16], "big")
    # Mark it as an RFC 9562 version 8 (custom) UUID, so the integer is a valid UUID as X.667 asks.
    value = (value & ~(0xF << 76)) | (0x8 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return f"2.25.{value}"


def patient_key(patient_id: str, site_code: str, secret: str) -> str:
    """Keyed hash of the original Patient ID within a site, for de-duplication without storing the id."""
    message = f"{site_code}\x00{patient_id.strip()}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def clean_descriptor(value: str) -> str:
    """Keeps a descriptor only when all its tokens are sequence jargon; otherwise returns ''."""
    value = value.strip()
    if len(value) > 64 or not _DESCRIPTOR_CHARSET.match(value):
        return ""
    for token in _TOKEN_SPLIT.split(value.lower()):
        if token and token not in DESCRIPTOR_VOCABULARY and not _SHORT_CODED_TOKEN.match(token):
            return ""
    return value


def shift_date(value: str, days: int) -> str:
    """Shifts a DA value by whole days; a partial or invalid date cannot be shifted and is blanked."""
    value = value.strip()
    if len(value) != 8 or not value.isdigit():
        return ""
    try:
        shifted = dt.date(int(value[:4]), int(value[4:6]), int(value[6:])) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return ""
    return shifted.strftime("%Y%m%d")


def shift_datetime(value: str, days: int) -> str:
    """Shifts the date part of a DT value; time of day and UTC offset are kept."""
    value = value.strip()
    date = shift_date(value[:8], days)
    return date + value[8:] if date else ""


def deidentify_dataset(
    ds: Dataset, *, case_code: str, date_shift_days: int | None, uid_secret: str, options: tuple[str, ...] = (),
    deny_by_default: bool = False,
) -> DeidResult:
    """De-identifies ``ds`` in place (file meta included) and says whether pixels may carry burned-in text.

    ``options`` are extra option codes (keys of ``OPTION_CODES``) the caller applied to this dataset itself.
    ``deny_by_default`` first removes every attribute not on the SOP class's allow-list (``NoAllowList`` when the
    class has none).
    """
    allowed = allowed_tags(_first_value(ds, _SOP_CLASS_UID)) if deny_by_default else None
    burned_in = _first_value(ds, _BURNED_IN_ANNOTATION).upper() == "YES"
    ctx = _Context(case_code, date_shift_days, uid_secret, Counter(), allowed)
    _clean_level(ds, ctx)
    codes = mark_deidentified(ds, date_shift_days=date_shift_days, options=options)
    ctx.actions.update((tag, ADDED) for tag in _MARK_TAGS)
    sop_uid = _first_value(ds, _SOP_INSTANCE_UID)
    _clean_file_meta(ds, sop_uid)
    result = DeidResult(
        burned_in=burned_in,
        study_uid=_first_value(ds, _STUDY_INSTANCE_UID),
        series_uid=_first_value(ds, _SERIES_INSTANCE_UID),
        sop_uid=sop_uid,
        actions=ctx.actions,
        method_codes=codes,
    )
    logger.debug("De-identified instance %s (burned-in flag: %s)", sop_uid, burned_in)
    return result


_BURNED_IN_ANNOTATION = 0x00280301
_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018
_STUDY_INSTANCE_UID = 0x0020000D
_SERIES_INSTANCE_UID = 0x0020000E


def _first_value(ds: Dataset, tag: int) -> str:
    if tag not in ds._dict:
        return ""
    values = _text_values(ds, tag)
    return values[0].strip() if values else ""


def _clean_level(ds: Dataset, ctx: _Context) -> None:
    elements = ds._dict
    counts = ctx.actions
    for tag in [tag for tag in elements if _structurally_removed(tag)]:
        counts[(tag | 0xFFFF, PRIVATE_REMOVED) if (tag >> 16) & 1 else (tag, REMOVED)] += 1
        del ds[tag]
    if ctx.allowed is not None:
        for tag in [tag for tag in elements if tag not in ctx.allowed]:
            counts[(tag, NOT_ALLOWED)] += 1
            del ds[tag]
    present = set(elements)

    for tag in present & _ALWAYS_REMOVED:
        counts[(tag, _apply(ds, tag, _ACTIONS.get(tag, _EMPTY), ctx))] += 1
    for tag in present & _CASE_CODE_TAGS:
        _store_text(ds, tag, _vr_of(ds, tag), [ctx.case_code])
        counts[(tag, PSEUDONYM)] += 1
    for tag in present & CLEANED_DESCRIPTORS:
        values = _text_values(ds, tag)
        original = "\\".join(values)
        if not values or clean_descriptor(original) != original.strip():
            _store_text(ds, tag, _vr_of(ds, tag), [])
            counts[(tag, DESCRIPTOR_BLANKED)] += 1
        else:
            counts[(tag, DESCRIPTOR_KEPT)] += 1

    temporal = present & (_DATE_TAGS | _TIME_TAGS) - _ALWAYS_REMOVED
    if ctx.date_shift_days is None:
        for tag in temporal:
            counts[(tag, _apply(ds, tag, _ACTIONS.get(tag, _EMPTY), ctx))] += 1
        handled_temporal = temporal
    else:
        handled_temporal = temporal & _DATE_TAGS  # times of day are kept
        for tag in handled_temporal:
            _shift(ds, tag, ctx.date_shift_days)
            counts[(tag, DATE_SHIFTED)] += 1

    acted = (present & _ACTION_TAGS) - temporal
    for tag in acted:
        counts[(tag, _apply(ds, tag, _ACTIONS[tag], ctx))] += 1
    counts.update((tag, KEPT) for tag in present - _HANDLED_APART - handled_temporal - acted)

    for tag in present & _SQ_TAGS:
        if tag in elements:
            for item in ds[tag].value or ():
                _clean_level(item, ctx)


def _structurally_removed(tag: int) -> bool:
    """Private elements, retired group lengths and the table's masked repeater entries (curves, overlays)."""
    if (tag >> 16) & 1 or not tag & 0xFFFF:
        return True
    if tag >> 24 in _MASKED_GROUP_PREFIXES:
        return any(tag & mask == value and action == _DELETE for value, mask, action in _MASKED)
    return False


def _vr_of(ds: Dataset, tag: int) -> str:
    """The VR without decoding the value when the file or the dictionary already tells it."""
    vr = ds._dict[tag].VR
    if vr is None:
        entry = DicomDictionary.get(tag)
        vr = entry[0] if entry else None
    if not vr or vr == "UN" or " or " in vr:
        vr = ds[tag].VR
    return vr


def _text_values(ds: Dataset, tag: int) -> list[str]:
    """The values of a text element, read from the raw bytes when the element was not decoded yet."""
    element = ds._dict[tag]
    if getattr(element, "is_raw", False) and element.value is not None:
        data = element.value
        return [v.strip(" \x00") for v in data.decode("latin-1").split("\\")] if data else []
    value = ds[tag].value
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes):
        return [value.decode("latin-1") if isinstance(value, bytes) else value]
    return [str(v) for v in value]


def _store_text(ds: Dataset, tag: int, vr: str, values: list[str]) -> None:
    """Stores ASCII values as an encoded raw element, so writing it costs no per-element validation."""
    text = "\\".join(values)
    implicit_vr, little_endian = ds.original_encoding
    if implicit_vr is None or not little_endian or not text.isascii():
        value: object = values if len(values) > 1 else (values[0] if values else None)
        ds._dict[BaseTag(tag)] = DataElement(tag, vr, value)
        return
    data = text.encode("ascii")
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    ds._dict[BaseTag(tag)] = RawDataElement(BaseTag(tag), vr, len(data), data, 0, implicit_vr, little_endian)


def _apply(ds: Dataset, tag: int, action: str, ctx: _Context) -> str:
    """Applies a resolved action and returns the one actually taken (a D on a UID remaps, a D on a sequence
    keeps it for the sequence pass)."""
    if action == _DELETE:
        del ds[tag]
        return REMOVED
    vr = _vr_of(ds, tag)
    if action == _KEEP or (action == _DUMMY and vr == "SQ"):
        return SEQUENCE_CLEANED  # kept; its items are cleaned by the sequence pass
    if action == _REMAP or (action == _DUMMY and vr == "UI"):
        _store_text(ds, tag, vr, [remap_uid(v, ctx.uid_secret) for v in _text_values(ds, tag) if v])
        return UID_REMAPPED
    if action == _EMPTY and vr == "SQ":
        ds._dict[BaseTag(tag)] = DataElement(tag, vr, Sequence())
    elif action == _EMPTY:
        _store_text(ds, tag, vr, [])
    elif vr in _BINARY_VRS:
        ds._dict[BaseTag(tag)] = DataElement(tag, vr, b"\x00\x00")
    elif vr in _NUMERIC_VRS:
        ds._dict[BaseTag(tag)] = DataElement(tag, vr, 0)
    else:
        _store_text(ds, tag, vr, [_DUMMY_VALUES.get(vr, "ANONYMIZED")])
    return EMPTIED if action == _EMPTY else DUMMY


def _shift(ds: Dataset, tag: int, days: int) -> None:
    vr = _vr_of(ds, tag)
    shift = shift_date if vr == "DA" else shift_datetime
    _store_text(ds, tag, vr, [shift(value, days) for value in _text_values(ds, tag)])


def method_codes(*, modified_dates: bool, options: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The codes declared for a dataset: the profile, Clean Descriptors, Modified Dates when dates were shifted,
    and the caller's extra options, in the order of ``OPTION_CODES``."""
    unknown = set(options) - set(OPTION_CODES)
    if unknown:
        raise ValueError(f"Unknown de-identification option code(s): {sorted(unknown)}")
    chosen = {PROFILE_CODE, CLEAN_DESCRIPTORS, *options}
    if modified_dates:
        chosen.add(MODIFIED_DATES)
    return tuple(code for code in OPTION_CODES if code in chosen)


def mark_deidentified(ds: Dataset, *, date_shift_days: int | None, options: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Writes the standard's own record of what was done: Patient Identity Removed, De-identification Method (the
    meanings) and its Code Sequence (the codes), Longitudinal Temporal Information Modified. Returns the codes."""
    modified_dates = date_shift_days is not None
    codes = method_codes(modified_dates=modified_dates, options=tuple(options))
    implicit_vr, little_endian = ds.original_encoding
    _store_text(ds, _PATIENT_IDENTITY_REMOVED, "CS", ["YES"])
    _store_text(ds, _METHOD, "LO", [OPTION_CODES[code] for code in codes])
    _store_text(ds, _TEMPORAL_MODIFIED, "CS", ["MODIFIED" if modified_dates else "REMOVED"])
    if implicit_vr is None or not little_endian:
        ds._dict[BaseTag(_METHOD_CODE_SEQUENCE)] = DataElement(_METHOD_CODE_SEQUENCE, "SQ", _code_items(codes))
        return codes
    data = _encoded_code_sequence(codes, implicit_vr)
    ds._dict[BaseTag(_METHOD_CODE_SEQUENCE)] = RawDataElement(
        BaseTag(_METHOD_CODE_SEQUENCE), "SQ", len(data), data, 0, implicit_vr, little_endian
    )
    return codes


_PATIENT_IDENTITY_REMOVED = 0x00120062
_METHOD = 0x00120063
_METHOD_CODE_SEQUENCE = 0x00120064
_TEMPORAL_MODIFIED = 0x00280303
_MARK_TAGS = (_PATIENT_IDENTITY_REMOVED, _METHOD, _METHOD_CODE_SEQUENCE, _TEMPORAL_MODIFIED)


def _code_items(codes: tuple[str, ...]) -> Sequence:
    items = []
    for value in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = _CODING_SCHEME
        item.CodeMeaning = OPTION_CODES[value]
        items.append(item)
    return Sequence(items)


@lru_cache(maxsize=32)
def _encoded_code_sequence(codes: tuple[str, ...], implicit_vr: bool) -> bytes:
    """The code sequence's value encoded once per option set and VR encoding, then reused as raw bytes."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = implicit_vr
    write_sequence(buffer, DataElement(_METHOD_CODE_SEQUENCE, "SQ", _code_items(codes)), ["iso8859"])
    return buffer.getvalue()


def _clean_file_meta(ds: Dataset, sop_uid: str) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    for tag in _FILE_META_REMOVED:
        meta._dict.pop(tag, None)
    if sop_uid:
        meta[_MEDIA_STORAGE_SOP_INSTANCE_UID] = DataElement(_MEDIA_STORAGE_SOP_INSTANCE_UID, "UI", sop_uid)
    else:
        meta._dict.pop(_MEDIA_STORAGE_SOP_INSTANCE_UID, None)
    meta[_IMPLEMENTATION_CLASS_UID] = DataElement(_IMPLEMENTATION_CLASS_UID, "UI", PYDICOM_IMPLEMENTATION_UID)
    meta[_IMPLEMENTATION_VERSION_NAME] = DataElement(_IMPLEMENTATION_VERSION_NAME, "SH", _VERSION_NAME)


_MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
_IMPLEMENTATION_CLASS_UID = 0x00020012
_IMPLEMENTATION_VERSION_NAME = 0x00020013
_VERSION_NAME = f"PYDICOM {pydicom_version}"


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@cache
def action_table() -> dict:
    """The attribute-action table as this module applies it (after resolving combined actions), with everything
    handled apart, as one JSON document: what the certificate's table version and sha256 stand for."""
    return {
        "profile": f"{PROFILE_CODE} {OPTION_CODES[PROFILE_CODE]}",
        "source": f"dicom-anonymizer {package_version('dicom-anonymizer')} {ANNEX_E_TABLE}",
        "actions": {_tag_text(tag): action for tag, action in sorted(_ACTIONS.items()) if tag not in _HANDLED_APART},
        "masked_repeating_groups": [
            {"tag": _tag_text(value), "mask": _tag_text(mask), "action": action} for value, mask, action in _MASKED
        ],
        "pseudonym": sorted(_tag_text(tag) for tag in _CASE_CODE_TAGS),
        "always_removed": sorted(_tag_text(tag) for tag in _ALWAYS_REMOVED),
        "clean_descriptors": sorted(_tag_text(tag) for tag in CLEANED_DESCRIPTORS),
        "descriptor_vocabulary": sorted(DESCRIPTOR_VOCABULARY),
        "dummy_values": _DUMMY_VALUES,
        "dates": "DA/DT at any depth shifted by the case's days (113107), or, in remove mode, the table's action and "
                 "emptied when not listed; times kept when shifting",
        "private_elements": "removed",
        "file_meta_removed": [_tag_text(tag) for tag in _FILE_META_REMOVED],
        "uids": "HMAC-SHA256 under the deployment's de-identification key, as 2.25.<UUID v8>",
    }


@cache
def action_table_sha256() -> str:
    """sha256 of ``action_table()`` as canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(action_table(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()

