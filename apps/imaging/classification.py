"""Sequence classification of an MR series from its header: T2W, FLAIR, T1W_POST (post-contrast T1W) or OTHER.

It must see the ORIGINAL header: de-identification blanks descriptions that are not pure sequence jargon and
empties the contrast agent. Names are tried first (Series Description, Protocol Name, Sequence Name, in the
habits of Siemens, GE and Philips), then timing (TR, TE, TI, scanning sequence) when names say nothing.
Anything the study does not read (diffusion, ADC, SWI, localisers, perfusion, angiography, phase images,
projections, T2*, STIR, T1 without contrast) is OTHER. The coordinator can always override the result.
"""

from __future__ import annotations

import logging
import re

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

logger = logging.getLogger(__name__)

T2W = "T2W"
FLAIR = "FLAIR"
T1W_POST = "T1W_POST"
OTHER = "OTHER"

_SPLIT = re.compile(r"[\s_\-/.,:;()\[\]*#=&]+")
_CONTRAST_MARK = re.compile(r"(?<![a-z0-9])(?:\+\s*(?:c|gd|km|contrast)|c\+|gd\+|km\+)(?![a-z0-9])")
_DARK_FLUID = re.compile(r"dark[\s_-]*fluid|da[\s_-]fl(?![a-z])")
_DEEP_RESOLVE = re.compile(r"deep[\s_-]*resolve")
_T2_STAR = re.compile(r"t2\s*\*|t2[\s_-]*star|t2s(?![a-z])")

_OTHER_TOKEN_TEXT = """
    dwi diff diffusion dti dki adc trace tracew ep2d resolve b0 b1000 fa colfa tensor eadc
    swi swan swip venobold minip mnip mip pha phase susceptibility
    loc localizer localiser scout survey 3pl tri aahead aascout smartbrain ref calibration cal coil
    perf perfusion dsc dce asl pcasl rcbv cbf cbv mtt ttp
    tof mra angio pc cine bold fmri rest resting svs csi spectro mrs spectroscopy
    sub subtraction stir hemo haste
"""
_OTHER_TOKENS = frozenset(_OTHER_TOKEN_TEXT.split())
_OTHER_IMAGE_TYPES = frozenset(
    {"LOCALIZER", "ADC", "TRACEW", "DIFFUSION", "FA", "EADC", "SWI", "MNIP", "MIP", "P", "PHASE", "SUBTRACTION",
     "PROJECTION IMAGE", "REFORMATTED", "MPR", "CPR", "PERFUSION", "ASL", "MIN IP"}
)
_PRE_TOKENS = frozenset({"pre", "precontrast", "native", "nativ", "nokm", "noncontrast"})
_POST_TOKENS = frozenset({"post", "postcontrast", "km", "gd", "gado", "contrast", "kontrast", "ce", "enh", "t1ce", "t1c"})
_T1_TOKENS = frozenset(
    {"mprage", "mp2rage", "bravo", "fspgr", "spgr", "vibe", "lava", "tfe", "thrive", "fl3d", "flash", "t1tfe",
     "efgre3d", "tfl", "mpr"}
)
_GRADIENT_TOKENS = frozenset({"gre", "ffe", "fl2d", "medic", "merge", "hemo", "t2ffe"})
_NO_AGENT = frozenset({"", "none", "no", "n/a", "na", "nil", "0", "nein", "geen"})


def classify_sequence(ds: Dataset) -> str:
    """The study sequence this series is, from names first and header timing second.

    A DERIVED\\SECONDARY series (made after the examination: MPR, subtraction, resampling) is OTHER unless it is a
    vendor's enhancement of an acquisition (`vendor_enhancement`), which keeps its contrast so that it can be
    matched with its conventional series; DERIVED\\PRIMARY images (e.g. distortion-corrected) are the acquisition's.
    """
    text = " ".join(
        str(ds.get(keyword, "") or "") for keyword in ("SeriesDescription", "ProtocolName", "SequenceName")
    ).lower()
    text = _DEEP_RESOLVE.sub(" ", text)  # Siemens' DL product, not RESOLVE diffusion
    tokens = {token for token in _SPLIT.split(text.replace("+", " + ")) if token}
    image_type = _values(ds, "ImageType")
    contrast = _has_contrast(ds, text, tokens)

    if tokens & _OTHER_TOKENS or image_type & _OTHER_IMAGE_TYPES or _T2_STAR.search(text):
        return OTHER
    if _image_type(ds)[:2] == ["DERIVED", "SECONDARY"] and vendor_enhancement(ds) is None:
        return OTHER
    by_name = _by_name(text, tokens, contrast)
    if by_name is not None:
        return by_name
    return _by_timing(ds, contrast)


def _has_contrast(ds: Dataset, text: str, tokens: set[str]) -> bool | None:
    """True for evidence of contrast, False for explicit pre-contrast, None when nothing says."""
    if tokens & _PRE_TOKENS:
        return False
    if _CONTRAST_MARK.search(text) or tokens & _POST_TOKENS:
        return True
    agent = str(ds.get("ContrastBolusAgent", "") or "").strip().lower()
    if agent and agent not in _NO_AGENT:
        return True
    if ds.get("ContrastBolusAgentSequence"):
        return True
    for keyword in ("ContrastBolusVolume", "ContrastBolusTotalDose"):
        if (_number(ds, keyword) or 0) > 0:
            return True
    return False if agent in _NO_AGENT - {""} else None


def _is_t1_token(token: str) -> bool:
    return token in _T1_TOKENS or bool(re.match(r"^(?:s|3d|ax|sag|cor)?t1(?:w|ce|c|mpr|se|tse|fs)?$", token)) or (
        token.startswith("tfl3d") or token.startswith("fl3d")
    )


def _is_t2_token(token: str) -> bool:
    return bool(re.match(r"^(?:s|3d|ax|sag|cor)?t2(?:w|tse|fse|fs)?$", token))


def _by_name(text: str, tokens: set[str], contrast: bool | None) -> str | None:
    t1 = any(_is_t1_token(token) for token in tokens)
    t2 = any(_is_t2_token(token) for token in tokens)
    flair = "flair" in tokens or bool(_DARK_FLUID.search(text)) or (t2 and "tirm" in tokens)
    if flair and not t1:
        return FLAIR
    if t1:
        return T1W_POST if contrast else OTHER
    if t2:
        return OTHER if tokens & _GRADIENT_TOKENS else T2W
    if tokens & {"bravo", "mprage"}:
        return T1W_POST if contrast else OTHER
    return None


def _values(ds: Dataset, keyword: str) -> set[str]:
    value = ds.get(keyword, None)
    if value is None or value == "":
        return set()
    if isinstance(value, str):
        return {value.strip().upper()}
    return {str(item).strip().upper() for item in value}


def _number(ds: Dataset, keyword: str) -> float | None:
    value = ds.get(keyword, None)
    if isinstance(value, MultiValue | list):
        value = value[0] if value else None
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _by_timing(ds: Dataset, contrast: bool | None) -> str:
    tr, te, ti = (_number(ds, keyword) for keyword in ("RepetitionTime", "EchoTime", "InversionTime"))
    scanning = _values(ds, "ScanningSequence")
    if "EP" in scanning or tr is None or te is None:
        return OTHER
    inversion = ti is not None and ti > 0
    if inversion and ti >= 1500 and te >= 60:
        return FLAIR
    if inversion and ti < 300:
        return OTHER  # STIR
    gradient = "GR" in scanning and "SE" not in scanning
    if tr >= 2000 and te >= 60 and not gradient and not inversion:
        return T2W
    t1_weighted = (tr <= 1000 and te <= 30) or (inversion and 300 <= ti <= 1300 and te <= 30)
    if t1_weighted:
        return T1W_POST if contrast else OTHER
    return OTHER


# Vendor DL enhancement: product names (any series that names one is the vendor's DL output, even ORIGINAL images
# of a scanner-integrated DL reconstruction), and enhancement words that count only in a DERIVED series'
# derivation (Derivation Description, Derivation Code Sequence meanings).
_DL_PRODUCTS = {
    "AIR Recon DL": r"air\s*recon\s*dl", "Sonic DL": r"sonic\s*dl", "Deep Resolve": r"deep\s*resolve",
    "SmartSpeed AI": r"smart\s*speed\s*(?:ai|precise)", "AiCE": r"aice", "SwiftMR": r"swift\s*mr",
    "SubtleMR": r"subtle\s*mr", "DeepRecon": r"deep\s*recon", "deep learning": r"deep\s*learning",
    "artificial intelligence": r"artificial\s*intelligence", "neural network": r"neural\s*net(?:work)?",
    "DLR": r"dlr", "DL": r"dl", "AI": r"ai",
}
_ENHANCEMENT_WORDS = {
    "denoising": r"de-?nois\w*", "noise reduction": r"noise\s*reduc\w*", "super-resolution": r"super\s*-?\s*resol\w*",
    "enhancement": r"enhanc\w*",
}


def _find(names: dict[str, str], text: str) -> str | None:
    """The first name whose pattern occurs in `text` as whole words (split as the classifier splits names)."""
    words = " ".join(token for token in _SPLIT.split(text.lower()) if token)
    for name, pattern in names.items():
        if re.search(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])", words):
            return name
    return None


def _image_type(ds: Dataset) -> list[str]:
    value = ds.get("ImageType", None)
    if value is None or value == "":
        return []
    return [str(item).strip().upper() for item in ([value] if isinstance(value, str) else value)]


def vendor_enhancement(ds: Dataset) -> str | None:
    """Why this series is a vendor's DL-enhanced version of another, in words, or None when nothing says so.

    A DERIVED series whose derivation (description or code meaning) names a DL product or an enhancement
    (denoising, noise reduction, super-resolution), or any series whose description, protocol, image type or
    software names a vendor DL product ("AIR Recon DL", "Deep Resolve", "SwiftMR", "deep learning", "DL", ...).
    The reason names only the product's vocabulary, never free header text.
    """
    image_type = _image_type(ds)
    derived = bool(image_type) and image_type[0] == "DERIVED"
    codes = " ".join(str(item.get("CodeMeaning", "") or "") for item in ds.get("DerivationCodeSequence", None) or [])
    derivation = f"{ds.get('DerivationDescription', '') or ''} {codes}"
    names = " ".join(
        [*(str(ds.get(k, "") or "") for k in ("SeriesDescription", "ProtocolName", "SoftwareVersions")), *image_type]
    )
    kind = "\\".join(image_type[:2]) or "no ImageType"
    if derived:
        found = _find(_DL_PRODUCTS, derivation) or _find(_ENHANCEMENT_WORDS, derivation)
        if found:
            return f"Vendor-enhanced series: ImageType {kind} and its derivation names {found}."
    found = _find(_DL_PRODUCTS, names)
    if found:
        return f"Vendor-enhanced series: ImageType {kind} and its description names {found}."
    return None
