"""factory_boy factories shared by all test packages: sites, users by role, cases, series, instances, studies.

`InstanceFactory` writes a real, small MR DICOM file into the default storage (the per-test MEDIA_ROOT set up
in `tests/conftest.py`), so anything that reads pixels works on it.
"""

import hashlib
from io import BytesIO

import factory
import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from apps.accounts.models import Role, User
from apps.imaging.models import Case, Instance, Sequence, Series, Version
from apps.institutions.models import Institution
from apps.studies.models import ReaderStudy
from apps.studies.services.definition import add_default_items

PASSWORD = "test-password-123"


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"Hospital Nummer{n} Clinic")
    code = factory.Sequence(lambda n: f"hosp{n}")
    pseudonym = factory.Sequence(lambda n: f"Zone {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.READER
    institution = factory.SubFactory(InstitutionFactory)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ReaderFactory(UserFactory):
    role = Role.READER
    pseudonym = factory.Sequence(lambda n: f"R{n}")


class CoordinatorFactory(UserFactory):
    role = Role.COORDINATOR
    is_staff = True


class AdminFactory(UserFactory):
    role = Role.ADMIN
    institution = None
    is_staff = True


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    code = factory.Sequence(lambda n: f"CASE{n:04d}")
    institution = factory.SubFactory(InstitutionFactory)
    patient_key = factory.Sequence(lambda n: hashlib.sha256(f"patient-{n}".encode()).hexdigest())


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Series

    case = factory.SubFactory(CaseFactory)
    series_uid = factory.LazyFunction(generate_uid)
    study_uid = factory.LazyFunction(generate_uid)
    sequence = Sequence.T2W
    version = Version.CONVENTIONAL
    rows = 16
    columns = 16
    pixel_spacing = factory.LazyFunction(lambda: [0.9, 0.9])
    slice_thickness = 3.0
    orientation = factory.LazyFunction(lambda: [1, 0, 0, 0, 1, 0])


def link_dl(conventional: Series, dl: Series, source=None) -> Series:
    """Records `dl` as the DL version of `conventional` from `source` (default: the deployment's default model at
    its factor, the source a study reads unless it names another)."""
    from apps.imaging.services import dl_versions

    return dl_versions.link(conventional, dl, source or dl_versions.default_source())


def mr_dataset(rows: int, columns: int, index: int, pixels: np.ndarray, **tags: object) -> Dataset:
    """A tiny but complete MR image with a realistic header, including values a reader must never see."""
    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-12345"
    ds.InstitutionName = "Hospital Nummer Clinic"
    ds.SeriesDescription = "T2 AX"
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-100.0, -100.0, 3.0 * index]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.9, 0.9]
    ds.SliceThickness = 3.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


class InstanceFactory(factory.django.DjangoModelFactory):
    """One slice of `series`, written as a DICOM file. Pass `pixels` (rows x columns) or get random ones;
    extra header tags go in `tags`."""

    class Meta:
        model = Instance
        exclude = ("index",)

    series = factory.SubFactory(SeriesFactory)
    index = factory.Sequence(lambda n: n)
    instance_number = factory.LazyAttribute(lambda o: o.index + 1)
    slice_location = factory.LazyAttribute(lambda o: 3.0 * o.index)
    pixels = None
    tags = factory.LazyFunction(dict)
    sop_uid = factory.LazyFunction(generate_uid)
    size = 0
    sha256 = ""
    file = ""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        series = kwargs["series"]
        index = kwargs["instance_number"] - 1
        pixels = kwargs.pop("pixels", None)
        if pixels is None:
            pixels = np.random.default_rng(index).integers(0, 4000, (series.rows, series.columns))
        ds = mr_dataset(series.rows, series.columns, index, np.asarray(pixels), **kwargs.pop("tags", {}))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = kwargs["sop_uid"]
        buffer = BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        data = buffer.getvalue()
        name = default_storage.save(f"series/{series.series_uid}/{kwargs['sop_uid']}.dcm", ContentFile(data))
        kwargs.update(file=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        return super()._create(model_class, *args, **kwargs)


class ReaderStudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReaderStudy
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Study {n}")
    seed = factory.Sequence(lambda n: 1000 + n)
    min_distance = 1

    @factory.post_generation
    def items(obj, create, extracted, **kwargs):
        """The default seven items, unless `items=False`."""
        if create and extracted is not False:
            add_default_items(obj)
