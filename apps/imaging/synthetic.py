"""Synthetic multi-site brain MRI studies with planted PHI, for the demo, the tests and the benchmarks.

Images come from the brain phantom of ``worker.enhance.phantom`` (tissue model with a glioma and oedema,
closed-form MR contrasts) with Rician noise added here, as a magnitude image of complex Gaussian noise has.
Headers imitate three sites of three vendors (naming habits, private creators, UID roots) and are full of
PHI in the places real headers carry it, including nested sequences and private elements, so that
de-identification has something to remove. ``planted_phi_values`` lists the exact strings, so a test can
search every stored byte for them. File names are neutral (``<series>/IM0001.dcm``): never PHI.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

from worker.enhance.phantom import AcquisitionParams, default_params, make_tissue_model, render_contrast

logger = logging.getLogger(__name__)

SEQUENCES = ("T2W", "FLAIR", "T1W_POST")
ENCODABLE_TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
)
_DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"
_BITS_STORED = 12
_NOISE_FRACTION = 0.025


class SeriesProtocol(NamedTuple):
    """How one vendor names and encodes one contrast."""

    description: str
    protocol_name: str
    scanning_sequence: str
    sequence_variant: str
    scan_options: str
    sequence_name: str
    image_type: tuple[str, ...]
    header_tr: float | None  # what the vendor writes as TR when it differs from the readout TR
    echo_train_length: int


class SiteProfile(NamedTuple):
    """One hospital's scanner. Institution and device fields are PHI and are planted in every header."""

    manufacturer: str
    model: str
    field_strength: float
    software_versions: str
    uid_root: str
    institution_name: str
    institution_address: str
    department: str
    station_name: str
    device_serial: str
    private_blocks: tuple[tuple[int, str], ...]  # (group, creator)
    contrast_agent: str
    protocols: dict[str, SeriesProtocol]


SITE_PROFILES: tuple[SiteProfile, ...] = (
    SiteProfile(
        manufacturer="SIEMENS",
        model="Prisma",
        field_strength=3.0,
        software_versions="syngo MR XA30",
        uid_root="1.3.12.2.1107.5.2.43.",
        institution_name="Hopital Saint-Aldric Universitaire",
        institution_address="14 Rue des Tilleuls, 69008 Lyon",
        department="Neuroradiologie Aldric",
        station_name="AWPALDRIC01",
        device_serial="SNALD166038",
        private_blocks=((0x0029, "SIEMENS CSA HEADER"), (0x0019, "SIEMENS MR HEADER")),
        contrast_agent="Gadovist",
        protocols={
            "T2W": SeriesProtocol(
                "t2_tse_tra_p2", "t2_tse_tra_p2", "SE", "SK\\SP\\OSP", "PFP\\FS", "*tse2d1_15",
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"), None, 15,
            ),
            "FLAIR": SeriesProtocol(
                "t2_tirm_tra_dark-fluid", "t2_tirm_tra_dark-fluid", "SE\\IR", "SK\\SP\\MP\\OSP", "IR\\PFP",
                "*tir2d1_16", ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"), None, 16,
            ),
            "T1W_POST": SeriesProtocol(
                "t1_mprage_tra_p2_iso_KM", "t1_mprage_tra_p2_iso_KM", "GR\\IR", "SK\\SP\\MP", "IR\\PFP",
                "*tfl3d1_16ns", ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"), 2300.0, 1,
            ),
        },
    ),
    SiteProfile(
        manufacturer="GE MEDICAL SYSTEMS",
        model="DISCOVERY MR750",
        field_strength=3.0,
        software_versions="DV26.0_R03_1831.b",
        uid_root="1.2.840.113619.2.312.",
        institution_name="Northbrook Memorial Medical Center",
        institution_address="2200 Larchmont Avenue, Northbrook",
        department="Northbrook Imaging Services",
        station_name="NBMMR750W",
        device_serial="NBM0000MR750",
        private_blocks=((0x0009, "GEMS_IDEN_01"), (0x0043, "GEMS_PARM_01")),
        contrast_agent="MultiHance",
        protocols={
            "T2W": SeriesProtocol(
                "Ax T2 FSE", "BRAIN TUMOUR/3", "SE", "SK\\OSP", "FAST_GEMS\\FILTERED_GEMS", "fse-xl_208",
                ("ORIGINAL", "PRIMARY", "OTHER"), None, 18,
            ),
            "FLAIR": SeriesProtocol(
                "Ax T2 FLAIR", "BRAIN TUMOUR/3", "SE\\IR", "SK\\OSP\\MP", "FAST_GEMS\\IR_GEMS\\FILTERED_GEMS",
                "fse-ir_208", ("ORIGINAL", "PRIMARY", "OTHER"), None, 20,
            ),
            "T1W_POST": SeriesProtocol(
                "Ax 3D BRAVO +C", "BRAIN TUMOUR/3", "GR\\IR", "SS\\SK\\SP", "FAST_GEMS\\EDR_GEMS\\IR_GEMS",
                "efgre3d", ("ORIGINAL", "PRIMARY", "OTHER"), None, 1,
            ),
        },
    ),
    SiteProfile(
        manufacturer="Philips Medical Systems",
        model="Ingenia",
        field_strength=1.5,
        software_versions="5.7.1\\5.7.1.2",
        uid_root="1.3.46.670589.11.71543.",
        institution_name="Ziekenhuis Oosterkade Groningen",
        institution_address="Oosterkade 88, 9711 Groningen",
        department="Radiologie Oosterkade",
        station_name="OOSTKMR15",
        device_serial="PHOK71543",
        private_blocks=((0x2001, "Philips Imaging DD 001"), (0x2005, "Philips MR Imaging DD 001")),
        contrast_agent="Dotarem",
        protocols={
            "T2W": SeriesProtocol(
                "T2W_TSE", "T2W_TSE", "SE", "SK", "FS", "TSE", ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                None, 16,
            ),
            "FLAIR": SeriesProtocol(
                "T2W_FLAIR_SENSE", "T2W_FLAIR_SENSE", "SE\\IR", "SK\\MP", "FS", "TSE",
                ("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"), None, 22,
            ),
            "T1W_POST": SeriesProtocol(
                "sT1W_3D_TFE_post", "sT1W_3D_TFE_post", "GR", "SK\\MP", "OTHER", "T1TFE",
                ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"), None, 1,
            ),
        },
    ),
)

_SURNAMES = ("SMITHFIELD", "VANDERMOLEN", "OKONKWOBA", "LINDQVISTER", "MARCHETTONI", "HAVERKAMPE", "ZELINSKAYA")
_GIVEN = ("JOHANNA", "BARTHOLOMEW", "ADAEZE", "SIGRUNNA", "EMILIANO", "WILLEMIJN", "TATYANA", "PERPETUA")
_STREETS = ("Harrowgate Lane", "Kestrelmoor Road", "Wintergreen Close", "Bellflower Crescent")
_STAFF = ("MOREAUVILLE^CELINE", "ABERNATHY^QUENTIN", "OYELARAN^FUNMI", "DESROCHERS^AMAURY", "KOWALCZYKI^ZOFIA")


class SyntheticPatient(NamedTuple):
    """One synthetic patient with every identifying value that ``write_study`` plants in the headers."""

    site_index: int
    index: int
    seed: int
    patient_id: str
    name: str  # DICOM PN, FAMILY^GIVEN
    birth_date: str
    sex: str
    age: str
    other_patient_id: str
    address: str
    telephone: str
    study_date: str
    study_time: str
    scheduled_date: str
    accession_number: str
    requested_procedure_id: str
    referring_physician: str
    performing_physician: str
    operator: str
    requesting_physician: str
    study_description: str
    image_comments: str
    patient_history: str
    procedure_meaning: str


def make_patient(site_index: int, index: int, seed: int) -> SyntheticPatient:
    """A deterministic patient of one site; the same arguments give the same patient."""
    rng = np.random.default_rng([seed, site_index, index])
    surname = f"{_SURNAMES[int(rng.integers(len(_SURNAMES)))]}{index:02d}"
    given = _GIVEN[int(rng.integers(len(_GIVEN)))]
    sex = "F" if rng.random() < 0.45 else "M"
    study = dt.date(2021, 1, 4) + dt.timedelta(days=int(rng.integers(0, 1100)))
    age = int(rng.integers(24, 82))
    birth = study - dt.timedelta(days=int(age * 365.25 + rng.integers(1, 360)))
    scheduled = study - dt.timedelta(days=int(rng.integers(3, 20)))
    number = int(rng.integers(1_000_000, 9_999_999))
    staff = rng.permutation(len(_STAFF))
    return SyntheticPatient(
        site_index=site_index,
        index=index,
        seed=seed,
        patient_id=f"PID{site_index}{number}",
        name=f"{surname}^{given}",
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        age=f"{age:03d}Y",
        other_patient_id=f"NHS{number * 7 % 10_000_000_000:010d}",
        address=f"{int(rng.integers(2, 200))} {_STREETS[int(rng.integers(len(_STREETS)))]}, Holloway",
        telephone=f"+44 20 7946 {int(rng.integers(1000, 9999))}",
        study_date=study.strftime("%Y%m%d"),
        study_time=f"{int(rng.integers(7, 19)):02d}{int(rng.integers(0, 60)):02d}{int(rng.integers(0, 60)):02d}",
        scheduled_date=scheduled.strftime("%Y%m%d"),
        accession_number=f"ACC{site_index}{int(rng.integers(10_000_000, 99_999_999))}",
        requested_procedure_id=f"RPID{int(rng.integers(100_000, 999_999))}",
        referring_physician=_STAFF[staff[0]],
        performing_physician=_STAFF[staff[1]],
        operator=_STAFF[staff[2]],
        requesting_physician=_STAFF[staff[3]],
        study_description=f"MRI brain {given.title()} {surname.title()} tumour follow-up",
        image_comments=f"Pt {surname.title()} claustrophobic, sedated by {_STAFF[staff[1]].split('^')[0].title()}",
        patient_history=f"Seizures since {birth.year + 30}; next of kin {given.title()} {surname.title()} senior",
        procedure_meaning=f"MRI BRAIN for {surname} {given}",
    )


def planted_phi_values(patient: SyntheticPatient) -> list[str]:
    """Every identifying string ``write_study`` puts in a header, each long enough to search bytes for."""
    site = SITE_PROFILES[patient.site_index]
    family, given = patient.name.split("^")
    values = [
        patient.name, family, given, patient.patient_id, patient.birth_date, patient.other_patient_id,
        patient.address, patient.telephone, patient.study_date, patient.scheduled_date, patient.accession_number,
        patient.requested_procedure_id, patient.study_description, patient.image_comments,
        patient.patient_history, patient.procedure_meaning,
        site.institution_name, site.institution_address, site.department, site.station_name, site.device_serial,
    ]
    for person in (
        patient.referring_physician, patient.performing_physician, patient.operator, patient.requesting_physician
    ):
        values.append(person)
        values.extend(person.split("^"))
    return list(dict.fromkeys(values))


def write_study(
    out_dir: Path,
    patient: SyntheticPatient,
    site: SiteProfile | None = None,
    *,
    shape_2d: tuple[int, int, int] = (12, 64, 64),
    shape_3d: tuple[int, int, int] = (16, 64, 64),
    seed: int = 0,
    sequences: Sequence[str] = SEQUENCES,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> list[Path]:
    """Writes one study (one series per sequence, one file per slice) under ``out_dir``; returns the files."""
    site = site or SITE_PROFILES[patient.site_index]
    transfer_syntax = UID(transfer_syntax)
    if transfer_syntax not in ENCODABLE_TRANSFER_SYNTAXES:
        raise ValueError(f"cannot encode {transfer_syntax.name}; use one of {ENCODABLE_TRANSFER_SYNTAXES}")
    entropy = [str(seed), str(patient.site_index), str(patient.index), patient.patient_id]
    study_uid = generate_uid(site.uid_root, [*entropy, "study"])
    frame_of_reference_uid = generate_uid(site.uid_root, [*entropy, "for"])
    written: list[Path] = []
    first_reference: tuple[str, str] | None = None
    for series_index, contrast in enumerate(sequences, start=1):
        protocol = site.protocols[contrast]
        shape = shape_3d if contrast == "T1W_POST" else shape_2d
        model = make_tissue_model(shape, seed=seed + patient.index * 7919 + patient.site_index)
        params = default_params(contrast, site.field_strength)
        image = render_contrast(model, contrast, params)
        pixels = _to_stored(_rician(image, np.random.default_rng([seed, patient.index, series_index])))
        series_uid = generate_uid(site.uid_root, [*entropy, "series", contrast])
        series_dir = Path(out_dir) / f"{series_index:02d}"
        series_dir.mkdir(parents=True, exist_ok=True)
        centre, width = _window(pixels)
        for z in range(shape[0]):
            sop_uid = generate_uid(site.uid_root, [*entropy, "sop", contrast, str(z)])
            ds = _header(patient, site, protocol, contrast, params)
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = sop_uid
            ds.FrameOfReferenceUID = frame_of_reference_uid
            ds.SeriesNumber = series_index * 100 if site.manufacturer.startswith("Philips") else series_index
            ds.InstanceNumber = z + 1
            _geometry(ds, model.spacing, model.origin_lps, z, is_3d=contrast == "T1W_POST")
            ds.ReferencedStudySequence = [_reference(_DETACHED_STUDY_MANAGEMENT, study_uid)]
            if first_reference is not None:
                ds.ReferencedImageSequence = [_reference(*first_reference)]
            ds.WindowCenter, ds.WindowWidth = centre, width
            _pixels(ds, pixels[z])
            path = series_dir / f"IM{z + 1:04d}.dcm"
            _save(ds, path, transfer_syntax)
            written.append(path)
        if first_reference is None:
            first_reference = (MRImageStorage, generate_uid(site.uid_root, [*entropy, "sop", contrast, "0"]))
    logger.info("Wrote a synthetic study of %d files", len(written))
    return written


def _rician(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of signal plus complex Gaussian noise: Rician in tissue, Rayleigh in the background."""
    sigma = _NOISE_FRACTION * float(np.percentile(image, 99))
    real = image + rng.normal(0.0, sigma, image.shape)
    imaginary = rng.normal(0.0, sigma, image.shape)
    return np.hypot(real, imaginary)


def _to_stored(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 2**_BITS_STORED - 1).astype(np.uint16)


def _window(pixels: np.ndarray) -> tuple[int, int]:
    low, high = np.percentile(pixels, [1, 99.5])
    return int((low + high) / 2), max(int(high - low), 1)


def _reference(sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = sop_instance_uid
    return item


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _header(
    patient: SyntheticPatient, site: SiteProfile, protocol: SeriesProtocol, contrast: str, params: AcquisitionParams
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(protocol.image_type)
    ds.SOPClassUID = MRImageStorage
    for prefix in ("Study", "Series", "Acquisition", "Content", "InstanceCreation"):
        setattr(ds, f"{prefix}Date", patient.study_date)
        setattr(ds, f"{prefix}Time", patient.study_time)
    ds.AccessionNumber = patient.accession_number
    ds.Modality = "MR"
    ds.Manufacturer = site.manufacturer
    ds.InstitutionName = site.institution_name
    ds.InstitutionAddress = site.institution_address
    ds.ReferringPhysicianName = patient.referring_physician
    ds.StationName = site.station_name
    ds.StudyDescription = patient.study_description
    ds.ProcedureCodeSequence = [_code("MRBRTUM", "99LOCAL", patient.procedure_meaning)]
    ds.SeriesDescription = protocol.description
    ds.InstitutionalDepartmentName = site.department
    ds.PerformingPhysicianName = patient.performing_physician
    ds.OperatorsName = patient.operator
    ds.ManufacturerModelName = site.model
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = site.institution_name
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.OtherPatientIDs = patient.other_patient_id
    ds.PatientAge = patient.age
    ds.PatientWeight = "72"
    ds.PatientAddress = patient.address
    ds.PatientTelephoneNumbers = patient.telephone
    ds.AdditionalPatientHistory = patient.patient_history
    ds.PatientComments = patient.image_comments
    if contrast == "T1W_POST":
        ds.ContrastBolusAgent = site.contrast_agent
        ds.ContrastBolusRoute = "IV"
        ds.ContrastBolusVolume = "15"
    ds.ScanningSequence = protocol.scanning_sequence
    ds.SequenceVariant = protocol.sequence_variant
    ds.ScanOptions = protocol.scan_options
    ds.MRAcquisitionType = "3D" if params.is_3d else "2D"
    ds.SequenceName = protocol.sequence_name
    ds.RepetitionTime = f"{protocol.header_tr or params.tr:g}"
    ds.EchoTime = f"{params.te:g}"
    if params.ti:
        ds.InversionTime = f"{params.ti:g}"
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = f"{42.577478 * site.field_strength:.6f}"
    ds.ImagedNucleus = "1H"
    ds.MagneticFieldStrength = f"{site.field_strength:g}"
    ds.EchoTrainLength = protocol.echo_train_length
    ds.DeviceSerialNumber = site.device_serial
    ds.SoftwareVersions = site.software_versions
    ds.ProtocolName = protocol.protocol_name
    ds.FlipAngle = f"{params.flip_angle:g}"
    ds.PatientPosition = "HFS"
    ds.StudyID = patient.accession_number[-6:]
    ds.AcquisitionNumber = 1
    ds.ImageComments = patient.image_comments
    ds.RequestingPhysician = patient.requesting_physician
    ds.RequestedProcedureDescription = patient.study_description
    ds.PerformedProcedureStepStartDate = patient.study_date
    ds.PerformedProcedureStepID = patient.requested_procedure_id
    request = Dataset()
    request.RequestedProcedureID = patient.requested_procedure_id
    request.ScheduledProcedureStepID = patient.accession_number
    request.ScheduledProcedureStepStartDate = patient.scheduled_date
    request.RequestedProcedureDescription = patient.study_description
    request.RequestedProcedureCodeSequence = [_code("MRBRTUM", "99LOCAL", patient.procedure_meaning)]
    ds.RequestAttributesSequence = [request]
    ds.BurnedInAnnotation = "NO"
    _private(ds, site, patient)
    return ds


def _private(ds: Dataset, site: SiteProfile, patient: SyntheticPatient) -> None:
    """Vendor-ish private blocks that repeat identifying values, as real ones do."""
    for number, (group, creator) in enumerate(site.private_blocks):
        block = ds.private_block(group, creator, create=True)
        block.add_new(0x10, "LO", patient.name.replace("^", " "))
        block.add_new(0x11, "LO", patient.patient_id)
        block.add_new(0x12, "SH", patient.study_date)
        block.add_new(0x20, "OB", f"<XProtocol> ScanningUser {patient.operator} {site.station_name}".encode())
        if number == 0:
            item = Dataset()
            item.add_new(0x00100010, "PN", patient.name)
            block.add_new(0x30, "SQ", DicomSequence([item]))


def _geometry(ds: Dataset, spacing, origin_lps, z: int, *, is_3d: bool) -> None:
    dz, dy, dx = (float(s) for s in spacing)
    x0, y0, z0 = (float(v) for v in origin_lps)
    ds.SliceThickness = f"{dz:g}"
    ds.SpacingBetweenSlices = f"{dz:g}"
    ds.ImagePositionPatient = [f"{x0:.4f}", f"{y0:.4f}", f"{z0 + z * dz:.4f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{z0 + z * dz:.4f}"
    ds.PixelSpacing = [f"{dy:g}", f"{dx:g}"]
    ds.InPlanePhaseEncodingDirection = "ROW" if is_3d else "COL"


def _pixels(ds: Dataset, plane: np.ndarray) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = plane.shape
    ds.BitsAllocated = 16
    ds.BitsStored = _BITS_STORED
    ds.HighBit = _BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(plane, dtype="<u2").tobytes()


def _save(ds: Dataset, path: Path, transfer_syntax: UID) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = ds.StationName[:16]
    ds.file_meta = meta
    if transfer_syntax.is_compressed:
        ds.compress(transfer_syntax)
    else:
        meta.TransferSyntaxUID = transfer_syntax
    ds.save_as(path, enforce_file_format=True)


def write_vendor_enhanced(
    source_files: Sequence[Path],
    out_dir: Path,
    *,
    product: str = "AIR Recon DL",
    image_type: tuple[str, ...] = ("DERIVED", "SECONDARY", "M", "ND"),
    derivation_description: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """A vendor's DL-enhanced copy of one written series, as commercial software sends it back: same study, frame
    of reference and geometry, new series and instance UIDs, smoothed pixels, ImageType DERIVED\\SECONDARY, a
    Derivation Description and code naming the product, and a Source Image Sequence pointing at the originals.
    ``derivation_description=""`` leaves the derivation out, so only the series description names the product."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source_files):
        ds = pydicom.dcmread(path)
        root = ds.SOPInstanceUID.rsplit(".", 2)[0] + "."
        entropy = [str(seed), product, str(ds.SeriesInstanceUID)]
        original = (ds.SOPClassUID, ds.SOPInstanceUID)
        ds.SeriesInstanceUID = generate_uid(root, [*entropy, "series"])
        ds.SOPInstanceUID = generate_uid(root, [*entropy, "sop", str(ds.InstanceNumber)])
        ds.SeriesNumber = int(ds.SeriesNumber) + 1000
        ds.SeriesDescription = f"{ds.SeriesDescription} {product}"
        ds.ImageType = list(image_type)
        if derivation_description != "":
            ds.DerivationDescription = derivation_description or f"Denoised by {product} (deep-learning reconstruction)"
            ds.DerivationCodeSequence = [_code("DLR", "99VENDOR", "Deep learning reconstruction")]
        ds.SourceImageSequence = [_reference(*original)]
        plane = ds.pixel_array.astype(float)
        smoothed = (plane + np.roll(plane, 1, 0) + np.roll(plane, -1, 0) + np.roll(plane, 1, 1) + np.roll(plane, -1, 1)) / 5
        _pixels(ds, _to_stored(smoothed))
        target = out_dir / path.name
        _save(ds, target, ExplicitVRLittleEndian)
        written.append(target)
    return written
