"""The allow-list of deny-by-default de-identification: per SOP class, the only attributes that may survive.

In deny-by-default mode an attribute survives only when its tag is on the list of the instance's SOP class, at any
depth; every other attribute (private ones included, and public ones the profile's table does not know) is removed
before the Basic Profile acts on what is left. The list is what the product needs downstream and what the MR Image
IOD requires: identification (as replaced), geometry, pixel description, display windows, the acquisition
parameters that classify a series and condition the enhancement model, and the references that link a vendor's DL
series to its source (UIDs as remapped). Free-text attributes that the profile blanks or cleans (descriptions)
stay on it so the IOD keeps its Type 2 attributes.

The list is versioned like the attribute-action table: ``ALLOW_LIST_VERSION`` changes with any edit, and the
sha256 of its canonical JSON is what every certificate names. A SOP class without a list cannot be de-identified
in this mode: its files are rejected, never stored with attributes no one has reviewed.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

from pydicom.datadict import tag_for_keyword
from pydicom.uid import MRImageStorage

ALLOW_LIST_VERSION = "2026.1"
ALLOW_LIST_NAME = f"readerstudy deny-by-default allow-list {ALLOW_LIST_VERSION}"

# Keywords by IOD module (PS3.3 A.4 MR Image IOD), plus the de-identification record and the attributes of the
# items of the sequences kept (code items, image references).
_MR_IMAGE_MODULES: dict[str, tuple[str, ...]] = {
    "SOP Common": ("SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID"),
    "Patient (as replaced)": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"),
    "De-identification record": (
        "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
        "LongitudinalTemporalInformationModified",
    ),
    "General Study": (
        "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
        "StudyDescription",
    ),
    "General Series": (
        "Modality", "SeriesInstanceUID", "SeriesNumber", "SeriesDate", "SeriesTime", "SeriesDescription",
        "ProtocolName", "BodyPartExamined", "PatientPosition", "Laterality",
    ),
    "Frame of Reference": ("FrameOfReferenceUID", "PositionReferenceIndicator"),
    "General Equipment": ("Manufacturer", "ManufacturerModelName", "SoftwareVersions"),
    "General Image": (
        "InstanceNumber", "PatientOrientation", "ContentDate", "ContentTime", "ImageType", "AcquisitionNumber",
        "AcquisitionDate", "AcquisitionTime", "ImagesInAcquisition", "BurnedInAnnotation", "LossyImageCompression",
        "LossyImageCompressionRatio", "LossyImageCompressionMethod", "PresentationLUTShape",
    ),
    "Derivation and references (DL and vendor linking)": (
        "DerivationDescription", "DerivationCodeSequence", "SourceImageSequence", "ReferencedImageSequence",
        "ReferencedSeriesSequence", "ReferencedSOPClassUID", "ReferencedSOPInstanceUID", "ReferencedFrameNumber",
    ),
    "Code items": ("CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning"),
    "Image Plane": (
        "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness", "SpacingBetweenSlices",
        "SliceLocation",
    ),
    "Image Pixel": (
        "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
        "PixelRepresentation", "PlanarConfiguration", "PixelAspectRatio", "SmallestImagePixelValue",
        "LargestImagePixelValue", "PixelPaddingValue", "PixelData",
    ),
    "Contrast/Bolus": (
        "ContrastBolusAgent", "ContrastBolusAgentSequence", "ContrastBolusRoute", "ContrastBolusVolume",
        "ContrastBolusIngredient", "ContrastBolusIngredientConcentration",
    ),
    "MR Image": (
        "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "SequenceName", "AngioFlag",
        "RepetitionTime", "EchoTime", "InversionTime", "TriggerTime", "NumberOfAverages", "ImagingFrequency",
        "ImagedNucleus", "EchoNumbers", "MagneticFieldStrength", "NumberOfPhaseEncodingSteps", "EchoTrainLength",
        "PercentSampling", "PercentPhaseFieldOfView", "PixelBandwidth", "ReceiveCoilName", "TransmitCoilName",
        "AcquisitionMatrix", "InPlanePhaseEncodingDirection", "FlipAngle", "VariableFlipAngleFlag", "SAR", "dBdt",
    ),
    "VOI LUT and Modality LUT": (
        "WindowCenter", "WindowWidth", "VOILUTFunction", "RescaleIntercept", "RescaleSlope", "RescaleType",
    ),
}

ALLOW_LISTS_BY_MODULE: dict[str, dict[str, tuple[str, ...]]] = {MRImageStorage: _MR_IMAGE_MODULES}


def _tags(modules: dict[str, tuple[str, ...]]) -> frozenset[int]:
    tags = set()
    for keywords in modules.values():
        for keyword in keywords:
            tag = tag_for_keyword(keyword)
            if tag is None:
                raise ValueError(f"Unknown keyword on the allow-list: {keyword}")
            tags.add(tag)
    return frozenset(tags)


ALLOW_LISTS: dict[str, frozenset[int]] = {uid: _tags(modules) for uid, modules in ALLOW_LISTS_BY_MODULE.items()}


class NoAllowList(ValueError):
    """Deny-by-default was asked for an instance of a SOP class that has no allow-list."""


def allowed_tags(sop_class_uid: str) -> frozenset[int]:
    """The tags that may survive in an instance of ``sop_class_uid``; raises ``NoAllowList`` for any other class."""
    tags = ALLOW_LISTS.get(sop_class_uid.strip("\x00 "))
    if tags is None:
        raise NoAllowList(f"No deny-by-default allow-list for SOP class {sop_class_uid or '(none)'}; only "
                          f"{', '.join(ALLOW_LISTS)} can be de-identified in this mode.")
    return tags


@cache
def allow_list_document() -> dict:
    """The allow-list as one JSON document: what the certificate's allow-list version and sha256 stand for."""
    return {
        "name": ALLOW_LIST_NAME,
        "version": ALLOW_LIST_VERSION,
        "rule": "deny by default: an attribute (at any depth) survives only when its tag is on the list of the "
                "instance's SOP class; all others, private ones included, are removed before the Basic Profile acts",
        "sop_classes": {
            uid: {module: sorted(f"({tag_for_keyword(k) >> 16:04X},{tag_for_keyword(k) & 0xFFFF:04X}) {k}"
                                 for k in keywords)
                  for module, keywords in modules.items()}
            for uid, modules in ALLOW_LISTS_BY_MODULE.items()
        },
    }


@cache
def allow_list_sha256() -> str:
    """sha256 of ``allow_list_document()`` as canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(allow_list_document(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
