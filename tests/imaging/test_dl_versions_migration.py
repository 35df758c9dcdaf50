"""The data migrations of issue 11, item 2: each one-to-one `counterpart` link becomes a DL version with its source
(the vendor, or the model and factor of the job that made it; a job from before the registry names its built-in model
by version only), and a study already opened records the source it reads."""

import pytest

from tests.migration_states import migrate_to, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("imaging", "0009_enhancementjob_provenance"), ("studies", "0003_score_times_one_clock")]
AFTER = [("imaging", "0011_remove_series_counterpart"), ("studies", "0004_readerstudy_dl_source")]


def migrate(targets):
    """Imaging and studies at ``targets``, every other app at a state that fits; the models of that state."""
    return migrate_to(targets)


@pytest.fixture(autouse=True)
def back_to_latest():
    """Whatever the test does, the database is at its latest migrations for the tests after it."""
    yield
    migrate_to_latest()


def test_counterparts_become_dl_versions_with_their_source_and_open_studies_record_it():
    old = migrate(BEFORE)
    Institution, Case = old.get_model("institutions", "Institution"), old.get_model("imaging", "Case")
    Series, Job = old.get_model("imaging", "Series"), old.get_model("imaging", "EnhancementJob")
    Model = old.get_model("enhancement_models", "EnhancementModel")
    Study, Task, Panel = (old.get_model("studies", name) for name in ("ReaderStudy", "ReadingTask", "TaskPanel"))
    User = old.get_model("accounts", "User")
    built_in = Model.objects.filter(built_in=True).order_by("version").last()
    assert built_in is not None, "the shipped models are in the registry after migrate"
    site = Institution.objects.create(name="North", code="north", pseudonym="Site N")
    case = Case.objects.create(code="C-1", institution=site, patient_key="k")

    def series(uid, **fields):
        return Series.objects.create(case=case, series_uid=uid, study_uid="1.2", rows=8, columns=8, **fields)

    t2w, flair = series("1", sequence="T2W"), series("2", sequence="FLAIR")
    engine = series("3", sequence="T2W", version="dl", source="enhanced")
    vendor = series("4", sequence="FLAIR", version="dl", source="vendor")
    for conventional, dl in ((t2w, engine), (flair, vendor)):
        Series.objects.filter(pk=conventional.pk).update(counterpart=dl)
        Series.objects.filter(pk=dl.pk).update(counterpart=conventional)
    Job.objects.create(series=t2w, output_series=engine, status="done", model_version=built_in.version,
                       noise_reduction_factor=8.0)  # made before the registry: no model row, its version
    reader = User.objects.create(username="r", institution=site, role="reader")
    opened = Study.objects.create(title="Open", status="reading", seed=1, token="t1")
    draft = Study.objects.create(title="Draft", status="draft", seed=2, token="t2")
    for study, shown in ((opened, engine), (draft, engine)):
        task = Task.objects.create(study=study, reader=reader, position=1, case=case, sequence="T2W", version="dl",
                                   token=f"task-{study.pk}")
        Panel.objects.create(task=task, panel="A", series=shown, image_token=f"img-{study.pk}")

    new = migrate(AFTER)
    Series, Study = new.get_model("imaging", "Series"), new.get_model("studies", "ReaderStudy")
    engine, vendor = Series.objects.get(pk=engine.pk), Series.objects.get(pk=vendor.pk)
    assert (engine.conventional_id, engine.dl_model_id, engine.dl_factor) == (t2w.pk, built_in.pk, 8.0)
    assert (vendor.conventional_id, vendor.dl_model_id, vendor.dl_factor) == (flair.pk, None, None)
    assert not Series.objects.filter(pk__in=[t2w.pk, flair.pk], conventional__isnull=False).exists()
    opened, draft = Study.objects.get(pk=opened.pk), Study.objects.get(pk=draft.pk)
    assert (opened.dl_source, opened.dl_model_id, opened.dl_factor) == ("default", built_in.pk, 8.0)
    assert (draft.dl_source, draft.dl_model_id, draft.dl_factor) == ("default", None, None), "fixed when it opens"

    back = migrate(BEFORE)  # and back: one counterpart per conventional series again
    Series = back.get_model("imaging", "Series")
    assert Series.objects.get(pk=t2w.pk).counterpart_id == engine.pk
    assert Series.objects.get(pk=vendor.pk).counterpart_id == flair.pk
