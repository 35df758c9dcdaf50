"""An admin sizes a larger study from this one (issue 14, item 2): the power page's form, a refusal in words,
the background job, and the curves with their numbers; then the report's Fig. 3. Screenshots go to var/shots."""

from pathlib import Path

import pytest
from django.conf import settings

from apps.analysis.models import PowerAnalysisJob
from tests.analysis.world import build_world, read
from tests.factories import PASSWORD, AdminFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SHOTS = Path(settings.BASE_DIR) / "var" / "shots"


def test_an_admin_draws_power_curves_from_a_pilot_study(page):
    world = build_world(cases_per_site=2, sequences=("T2W",), slices=1, readers_per_case=2)
    read(world)
    admin = AdminFactory()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto("/accounts/login/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()

    page.goto(f"/analysis/studies/{world.study.pk}/exports/")
    page.click("text=Power and sample size")
    page.wait_for_url(f"**/analysis/studies/{world.study.pk}/power/")
    page.fill("input[name=cases]", "10, -4")
    page.click("#power-form button[type=submit]")
    assert "cases must lie between 3 and 2000 (given -4 to 10)" in page.inner_text("#power-error")
    assert page.input_value("input[name=cases]") == "10, -4", "the admin's input is kept"
    page.screenshot(path=str(SHOTS / "power-form-refused.png"), full_page=True)

    page.fill("input[name=cases]", "10, 20, 40")
    page.fill("input[name=readers]", "2, 3")
    page.check("input[name=modes][value=paired]")
    page.fill("input[name=n_studies]", "300")
    page.fill("input[name=effect]", "1.2")
    page.click("#power-form button[type=submit]")
    page.wait_for_selector("#power-curves")
    job = PowerAnalysisJob.objects.get()
    assert page.inner_text("#power-status").strip() == "Done" and job.designs_done == 12
    rows = page.locator("#power-table tbody tr")
    assert rows.count() == 12
    first = job.result["power"][0]
    assert rows.nth(0).inner_text().split("\t")[:6] == ["single", "2", "2", "10", "300", f"{first['power']:.3f}"]
    page.screenshot(path=str(SHOTS / "power-job-curves.png"), full_page=True)

    page.goto(f"/analysis/studies/{world.study.pk}/report/")
    assert "Fig. 3. Power of a larger study with this study as pilot" in page.inner_text("body")
    page.locator("figure").nth(2).screenshot(path=str(SHOTS / "power-report-fig3.png"))
