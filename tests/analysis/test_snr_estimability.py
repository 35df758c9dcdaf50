"""SNR/CNR when a denoiser flattens the air: ROIs drawn through the reader API on stored series whose DL background
is exactly 0, then the ROI export and the report. The paper's ratios are not estimable (never inf), counted; the
tissue-SD ratios equal numpy's mean / SD of the same pixels."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from apps.analysis.stats.snr import MIN_NOISE_PIXELS
from apps.imaging.models import Instance, Version
from apps.studies.models import ReadingTask
from tests.analysis.world import build_world, read
from tests.factories import AdminFactory, InstanceFactory

SIZE = 16
SLICE = 1
# label -> (centre row, centre col, radius): S1 and S2 are 13 pixels, the background 9 (the least that counts).
ELLIPSES = {"S1": (4, 5, 2), "S2": (10, 10, 2), "background": (12, 3, 1.5)}
DL_SLOPE = 1.5


def disc(row: float, col: float, radius: float) -> np.ndarray:
    """Pixels whose centres lie within the radius, computed here rather than by the product's Ellipse."""
    rows, cols = np.indices((SIZE, SIZE))
    return (rows - row) ** 2 + (cols - col) ** 2 <= radius**2


def slices() -> tuple[np.ndarray, np.ndarray]:
    """Stored pixels of a noisy conventional slice and of its "DL" slice: tissue smoothed, air set to 0."""
    rng = np.random.default_rng(7)
    conventional = rng.normal(20, 6, (SIZE, SIZE))
    dl = np.zeros((SIZE, SIZE))
    for label, level in (("S1", 400), ("S2", 300)):
        inside = disc(*ELLIPSES[label])
        conventional[inside] = rng.normal(level, 25, inside.sum())
        dl[inside] = (level + (conventional[inside] - level) * 0.4) / DL_SLOPE
    return np.rint(np.clip(conventional, 0, None)).astype(np.uint16), np.rint(dl).astype(np.uint16)


@pytest.fixture
def flat_background_world(db, client):
    """One image whose DL background is flat; its reader draws S1, S2 and background; every task is submitted."""
    world = build_world(cases_per_site=1, sequences=("T2W",))
    task = ReadingTask.objects.filter(study=world.study, version=Version.CONVENTIONAL).order_by("pk").first()
    conventional = task.panels.get().series
    stored = dict(zip((Version.CONVENTIONAL, Version.DL), slices(), strict=True))
    values = {}
    for series, slope in ((conventional, 1.0), (conventional.dl_versions.get(), DL_SLOPE)):
        Instance.objects.filter(series=series, instance_number=SLICE + 1).delete()
        InstanceFactory(series=series, index=SLICE, pixels=stored[series.version],
                        tags={"RescaleSlope": slope, "RescaleIntercept": 0})
        values[series.version] = stored[series.version] * slope
    client.force_login(task.reader)
    for label, (row, col, radius) in ELLIPSES.items():
        geometry = {"slice_index": SLICE, "center_row": row, "center_col": col, "radius_rows": radius,
                    "radius_cols": radius}
        response = client.post(f"/api/analysis/rois/{task.token}/", {"label": label, **geometry},
                               content_type="application/json")
        assert response.status_code == 201, response.content
    read(world)
    client.force_login(AdminFactory())
    world.values = values
    return world


def stats(values: np.ndarray, label: str) -> tuple[float, float]:
    pixels = values[disc(*ELLIPSES[label])]
    return float(np.mean(pixels)), float(np.std(pixels, ddof=1))


def test_roi_export_says_not_estimable_and_gives_tissue_snr(client, flat_background_world) -> None:
    values = flat_background_world.values
    assert disc(*ELLIPSES["background"]).sum() == MIN_NOISE_PIXELS
    response = client.get(f"/analysis/studies/{flat_background_world.study.pk}/exports/rois.csv")
    text = b"".join(response.streaming_content).decode()
    assert "inf" not in text.lower() and "nan" not in text.lower()
    rows = pd.read_csv(io.StringIO(text)).set_index(["roi", "version"])

    assert rows.loc[("background", "dl"), "sd"] == 0
    for label in ("S1", "S2"):
        dl = rows.loc[(label, "dl")]
        assert pd.isna(dl["snr"]) and pd.isna(dl["cnr"])
        assert dl["not_estimable"] == "snr cnr"
        for version in ("conventional", "dl"):
            mean, sd = stats(values[version], label)
            assert rows.loc[(label, version), "snr_tissue"] == pytest.approx(mean / sd)
    s1_mean, _ = stats(values["conventional"], "S1")
    _, background_sd = stats(values["conventional"], "background")
    assert rows.loc[("S1", "conventional"), "snr"] == pytest.approx(s1_mean / background_sd)
    assert pd.isna(rows.loc[("S1", "conventional"), "not_estimable"])
    assert rows.loc[("background", "dl"), ["snr", "snr_tissue", "cnr", "cnr_tissue"]].isna().all()
    # The DL tissue is smoother, so its tissue SNR is higher, and finite without any background noise.
    assert rows.loc[("S1", "dl"), "snr_tissue"] > rows.loc[("S1", "conventional"), "snr_tissue"]


def test_report_shows_not_estimable_and_counts_it(client, flat_background_world) -> None:
    values = flat_background_world.values
    study = flat_background_world.study
    response = client.get(f"/analysis/studies/{study.pk}/report/")
    assert response.status_code == 200
    html = response.content.decode()
    table2 = html[html.index('<section id="table2">') : html.index('<section id="table3">')]
    assert "inf" not in table2.lower() and "Table 2 not shown" not in html
    for label in ("SNR₁", "SNR₂", "CNR"):
        assert f"<td>{label}</td><td>" in table2
    assert table2.count("<td>n.e.</td>") == 3
    assert "Images left out, of all measured: SNR₁ 1 of 2; SNR₂ 1 of 2; CNR 1 of 2." in table2
    mean, sd = stats(values["dl"], "S1")
    assert f"<td>{mean / sd:.1f} (NA, NA)</td>" in table2
    assert "SNR₁, tissue SD" in table2
    pdf = client.get(f"/analysis/studies/{study.pk}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
