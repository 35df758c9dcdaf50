"""The demo set-up that `scripts/demo.sh` runs: sites, people, imported cases, DL versions, an open study."""

import io

import pytest
from django.core.management import call_command

from apps.accounts.models import Role, User
from apps.imaging.models import Case, EnhancementJob, JobStatus, Series, Version
from apps.imaging.services import enhancement_runner
from apps.imaging.services.demo import create_demo
from apps.studies.models import StudyStatus
from apps.studies.services.demo import create_demo_study, wait_for_enhancement

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


# Fewer slices than the demo, but its 128^2 matrix and enough slices for the model (at 48^2, or 3 slices, its
# output fails the residual check on intensity, and a failed pair is not given to readers).
SHAPE_2D, SHAPE_3D = (6, 128, 128), (8, 128, 128)


def test_demo_builds_an_open_cross_site_study(monkeypatch):
    monkeypatch.setattr("apps.imaging.services.enhancement.enqueue", lambda job: None)
    demo = create_demo(patients_per_site=2, shape_2d=SHAPE_2D, shape_3d=SHAPE_3D)
    assert [b.rejected_count for b in demo.batches] == [0, 0, 0]
    assert Case.objects.count() == 6 and all(c.age and c.tumour_type for c in Case.objects.all())
    assert {login.role for login in demo.logins} == {"Admin", "Coordinator", "Reader"}
    assert User.objects.filter(role=Role.READER).count() == 3
    for job in EnhancementJob.objects.all():
        enhancement_runner.run_job(job.pk, device="cpu")
    assert wait_for_enhancement(1, lambda done, total: None)
    assert EnhancementJob.objects.filter(status=JobStatus.DONE).count() == 18
    assert Series.objects.filter(version=Version.DL).count() == 18
    assert set(EnhancementJob.objects.values_list("noise_reduction_factor", flat=True)) == {16.0}
    assert not EnhancementJob.objects.filter(qa_flagged=True).exists(), "every demo pair is a real enhancement"

    study = create_demo_study()
    assert study.status == StudyStatus.READING
    assert study.tasks.exists()
    for task in study.tasks.select_related("reader", "case"):
        assert task.reader.institution_id != task.case.institution_id, "cross-site rule"
    assert create_demo_study().pk == study.pk, "a second run adds nothing"
    again = create_demo(patients_per_site=2, shape_2d=SHAPE_2D, shape_3d=SHAPE_3D)
    assert [b.accepted_count for b in again.batches] == [0, 0, 0] and Case.objects.count() == 6


def test_setup_demo_fails_clearly_without_a_worker(monkeypatch):
    monkeypatch.setattr("apps.imaging.services.enhancement.enqueue", lambda job: None)
    with pytest.raises(Exception, match="worker did not finish"):
        call_command("setup_demo", patients_per_site=1, wait=0.5, stdout=io.StringIO())
