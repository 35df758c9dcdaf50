"""Sequence classification on the naming habits of Siemens, GE and Philips, and on header timing alone."""

import pydicom
import pytest
from pydicom.dataset import Dataset

from apps.imaging import classification, synthetic
from apps.imaging.classification import FLAIR, OTHER, T1W_POST, T2W


def _header(description="", protocol=None, sequence_name="", *, scanning="SE", variant="SK", tr=None, te=None,
            ti=None, agent=None, image_type=("ORIGINAL", "PRIMARY", "M", "ND"), acquisition="2D") -> Dataset:
    ds = Dataset()
    ds.Modality = "MR"
    ds.ImageType = list(image_type)
    ds.SeriesDescription = description
    ds.ProtocolName = description if protocol is None else protocol
    ds.SequenceName = sequence_name
    ds.ScanningSequence = scanning.split("\\")
    ds.SequenceVariant = variant.split("\\")
    ds.MRAcquisitionType = acquisition
    for keyword, value in (("RepetitionTime", tr), ("EchoTime", te), ("InversionTime", ti)):
        if value is not None:
            setattr(ds, keyword, str(value))
    if agent is not None:
        ds.ContrastBolusAgent = agent
    return ds


VENDOR_HEADERS = [
    # Siemens
    (_header("t2_tse_tra", sequence_name="*tse2d1_15", tr=6000, te=99), T2W),
    (_header("t2_tse_tra_p2_320", sequence_name="*tse2d1_15", tr=5000, te=95), T2W),
    (_header("t2_tirm_tra_dark-fluid", sequence_name="*tir2d1_16", scanning="SE\\IR", tr=9000, te=81, ti=2500),
     FLAIR),
    (_header("t2_spc_da-fl_sag_p2_iso", sequence_name="*spcir_278", scanning="SE\\IR", tr=5000, te=387, ti=1800,
             acquisition="3D"), FLAIR),
    (_header("t1_mprage_sag_p2_iso_KM", sequence_name="*tfl3d1_16ns", scanning="GR\\IR", tr=2300, te=2.3,
             ti=900, agent="Gadovist", acquisition="3D"), T1W_POST),
    (_header("t1_mprage_sag_p2_iso_KM", sequence_name="*tfl3d1_16ns", scanning="GR\\IR", tr=2300, te=2.3,
             ti=900, acquisition="3D"), T1W_POST),
    (_header("", "", "*tfl3d1", scanning="GR\\IR", tr=2300, te=2.3, ti=900, agent="Dotarem", acquisition="3D"),
     T1W_POST),
    (_header("t1_fl3d_tra_KM", sequence_name="*fl3d1", scanning="GR", tr=7, te=2.5, acquisition="3D"), T1W_POST),
    (_header("t1_mprage_sag_p2_iso", sequence_name="*tfl3d1_16ns", scanning="GR\\IR", tr=2300, te=2.3, ti=900,
             acquisition="3D"), OTHER),
    (_header("ep2d_diff_3scan_trace_p2", sequence_name="*ep_b0_1000", scanning="EP", tr=5000, te=90), OTHER),
    (_header("ep2d_diff_3scan_trace_p2_ADC", image_type=("DERIVED", "PRIMARY", "DIFFUSION", "ADC"),
             scanning="EP", tr=5000, te=90), OTHER),
    (_header("AAHead_Scout_32ch-head-coil", sequence_name="*fl2d1", scanning="GR", tr=8, te=4), OTHER),
    (_header("swi_tra", sequence_name="*swi3d1r", scanning="GR", tr=27, te=20), OTHER),
    (_header("t2_fl2d_tra_hemo", sequence_name="*fl2d1", scanning="GR", tr=600, te=20), OTHER),
    (_header("t2_tse_tra", image_type=("ORIGINAL", "PRIMARY", "P", "ND"), tr=6000, te=99), OTHER),
    # GE
    (_header("Ax T2 FSE", "BRAIN TUMOUR/3", "fse-xl_208", tr=4800, te=102), T2W),
    (_header("AX T2 PROPELLER", "BRAIN/2", tr=5000, te=110), T2W),
    (_header("Ax T2 FLAIR", "BRAIN TUMOUR/3", "fse-ir_208", scanning="SE\\IR", tr=9000, te=120, ti=2400), FLAIR),
    (_header("Sag CUBE FLAIR", "BRAIN/4", scanning="SE\\IR", tr=6000, te=130, ti=1800, acquisition="3D"), FLAIR),
    (_header("3D BRAVO +C", "BRAIN TUMOUR/3", "efgre3d", scanning="GR\\IR", tr=8.2, te=3.2, ti=450,
             acquisition="3D"), T1W_POST),
    (_header("AX T1 FSPGR POST", "BRAIN/5", scanning="GR", tr=190, te=2.5), T1W_POST),
    (_header("Ax T1 SE", "BRAIN/1", tr=500, te=12), OTHER),
    (_header("Sag T1 FLAIR", "BRAIN/1", scanning="SE\\IR", tr=2000, te=10, ti=750), OTHER),
    (_header("AX T1 FLAIR +C", "BRAIN/1", scanning="SE\\IR", tr=2000, te=10, ti=750), T1W_POST),
    (_header("Ax DWI 1000b", scanning="EP", tr=6000, te=80), OTHER),
    (_header("3-Plane Loc", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), scanning="GR", tr=5, te=1.6), OTHER),
    (_header("Ax SWAN", scanning="GR", tr=40, te=25), OTHER),
    (_header("ASSET Cal", scanning="GR", tr=150, te=1.5), OTHER),
    # Philips
    (_header("T2W_TSE", tr=3000, te=80), T2W),
    (_header("T2W_TSE_SENSE", tr=3000, te=80), T2W),
    (_header("3D_FLAIR_SENSE", scanning="SE\\IR", tr=4800, te=310, ti=1650, acquisition="3D"), FLAIR),
    (_header("FLAIR_longTR", scanning="SE\\IR", tr=11000, te=125, ti=2800), FLAIR),
    (_header("T1W_3D_TFE +Gd", scanning="GR", tr=8.1, te=3.7, acquisition="3D"), T1W_POST),
    (_header("sT1W_3D_TFE_post", scanning="GR", tr=8.1, te=3.7, acquisition="3D"), T1W_POST),
    (_header("T1W_3D_TFE", scanning="GR", tr=8.1, te=3.7, acquisition="3D"), OTHER),
    (_header("T1W_3D_TFE pre", scanning="GR", tr=8.1, te=3.7, agent="Gadovist", acquisition="3D"), OTHER),
    (_header("DWI_SENSE", scanning="SE\\EP", tr=3000, te=70), OTHER),
    (_header("Survey", scanning="GR", tr=11, te=4.6), OTHER),
    (_header("SWIp", scanning="GR", tr=31, te=7.2), OTHER),
    (_header("T2W_FFE", scanning="GR", tr=800, te=16), OTHER),
]


@pytest.mark.parametrize(("ds", "expected"), VENDOR_HEADERS, ids=lambda v: getattr(v, "SeriesDescription", v))
def test_vendor_naming_habits(ds, expected):
    assert classification.classify_sequence(ds) == expected


HEADER_ONLY = [
    (_header(tr=5000, te=100), T2W),
    (_header(scanning="SE\\IR", tr=9000, te=120, ti=2500), FLAIR),
    (_header(scanning="GR\\IR", tr=8, te=3, ti=900, agent="MultiHance", acquisition="3D"), T1W_POST),
    (_header(scanning="GR", tr=8, te=3, agent="none", acquisition="3D"), OTHER),
    (_header(scanning="GR\\IR", tr=8, te=3, ti=900, acquisition="3D"), OTHER),
    (_header(scanning="SE\\IR", tr=5000, te=60, ti=150), OTHER),
    (_header(scanning="EP", tr=5000, te=90), OTHER),
    (_header(scanning="GR", tr=700, te=20), OTHER),
    (_header(), OTHER),
]


@pytest.mark.parametrize(("ds", "expected"), HEADER_ONLY)
def test_blank_descriptions_use_timing_and_contrast_tags(ds, expected):
    assert classification.classify_sequence(ds) == expected


def test_contrast_volume_counts_as_contrast():
    ds = _header(scanning="GR", tr=8, te=3, acquisition="3D")
    ds.ContrastBolusVolume = "15"
    assert classification.classify_sequence(ds) == T1W_POST


@pytest.mark.parametrize("site_index", [0, 1, 2])
def test_synthetic_series_classify_as_generated(synthetic_studies, site_index):
    _, files = synthetic_studies[site_index]
    found = {pydicom.dcmread(path).SeriesNumber: classification.classify_sequence(pydicom.dcmread(path))
             for path in files}
    assert sorted(found.values()) == sorted(synthetic.SEQUENCES)


# Vendor-enhanced series (issue 10, item 5): never a second conventional series.
def _derived(description="t2_tse_tra", image_type=("DERIVED", "SECONDARY", "M", "ND"), derivation=None, code=None,
             software=None) -> Dataset:
    ds = _header(description, sequence_name="*tse2d1_15", tr=6000, te=99, image_type=image_type)
    if derivation is not None:
        ds.DerivationDescription = derivation
    if code is not None:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "X1", "99VENDOR", code
        ds.DerivationCodeSequence = [item]
    if software is not None:
        ds.SoftwareVersions = software
    return ds


VENDOR_ENHANCED = [
    pytest.param(_derived(derivation="Denoised with AIR Recon DL"), "air recon dl", id="derivation-air-recon-dl"),
    pytest.param(_derived(derivation="deep learning denoising"), "deep learning", id="derivation-deep-learning"),
    pytest.param(_derived(derivation="Noise reduction, factor 3"), "noise reduction", id="derivation-denoising"),
    pytest.param(_derived(code="Deep Learning Reconstruction"), "deep learning", id="derivation-code"),
    pytest.param(_derived("t2_tse_tra_Deep_Resolve"), "deep resolve", id="description-deep-resolve"),
    pytest.param(_derived("T2 AX SwiftMR"), "swiftmr", id="description-swiftmr"),
    pytest.param(_derived("Ax T2 FSE", software="SubtleMR 2.3.0"), "subtlemr", id="software-subtlemr"),
    pytest.param(_derived("T2W_TSE DL", image_type=("DERIVED", "PRIMARY", "M")), "dl", id="derived-primary-dl"),
    pytest.param(_derived("Ax T2 FSE AIR Recon DL", image_type=("ORIGINAL", "PRIMARY", "OTHER")), "air recon dl",
                 id="scanner-dl-recon-original"),
]


@pytest.mark.parametrize(("ds", "named"), VENDOR_ENHANCED)
def test_vendor_enhanced_series_are_recognised_with_their_reason(ds, named):
    reason = classification.vendor_enhancement(ds)
    assert reason is not None and named in reason.lower()
    # Still classified by its contrast, so the coordinator sees which conventional series it belongs to.
    assert classification.classify_sequence(ds) == T2W


NOT_VENDOR_ENHANCED = [
    pytest.param(_header("t2_tse_tra", tr=6000, te=99), T2W, id="original"),
    pytest.param(_derived("t2_tse_tra", image_type=("DERIVED", "PRIMARY", "M", "ND", "NORM")), T2W,
                 id="derived-primary-distortion-corrected"),
    pytest.param(_derived("t2_tse_tra_MPR", image_type=("DERIVED", "SECONDARY", "MPR")), OTHER, id="mpr"),
    pytest.param(_derived("t1_sub", image_type=("DERIVED", "SECONDARY", "SUBTRACTION")), OTHER, id="subtraction"),
    pytest.param(_derived("t2_tse_tra", derivation="Resampled to 1 mm"), OTHER, id="derived-secondary-resampled"),
    pytest.param(_header("t2_tse_tra_main", tr=6000, te=99), T2W, id="ai-inside-a-word"),
    pytest.param(_header("T1W_3D_TFE +Gd enhanced", scanning="GR", tr=8.1, te=3.7, acquisition="3D"), T1W_POST,
                 id="contrast-enhanced-is-not-dl"),
]


@pytest.mark.parametrize(("ds", "expected"), NOT_VENDOR_ENHANCED)
def test_other_series_are_not_vendor_enhanced(ds, expected):
    """A derived series that is not an enhancement (MPR, subtraction, resampling) is not read as a study sequence
    when it is SECONDARY (made after the examination); DERIVED\\PRIMARY images are the acquisition's own."""
    assert classification.vendor_enhancement(ds) is None
    assert classification.classify_sequence(ds) == expected


def test_synthetic_vendor_series_is_recognised(synthetic_studies, tmp_path):
    _, files = synthetic_studies[1]
    t2w = [p for p in files if classification.classify_sequence(pydicom.dcmread(p)) == T2W]
    vendor = synthetic.write_vendor_enhanced(t2w, tmp_path / "vendor")
    ds = pydicom.dcmread(vendor[0])
    assert "air recon dl" in classification.vendor_enhancement(ds).lower()
    assert classification.classify_sequence(ds) == T2W
