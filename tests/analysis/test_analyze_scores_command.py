"""`manage.py analyze_scores`: the reference data end to end, and clear refusals of bad CSV files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from tests.analysis.synthetic import small_study

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_files(tmp_path: Path) -> dict[str, Path]:
    scores, patients, rois = small_study(patients_per_site=4)
    paths = {"scores": tmp_path / "scores.csv", "patients": tmp_path / "patients.csv", "rois": tmp_path / "rois.csv"}
    scores.to_csv(paths["scores"], index=False)
    patients.to_csv(paths["patients"], index=False)
    rois.to_csv(paths["rois"], index=False)
    return paths


def analyze(tmp_path: Path, **files: Path) -> Path:
    out = tmp_path / "out"
    call_command("analyze_scores", *[f"--{k}={v}" for k, v in files.items()], f"--out={out}")
    return out


@pytest.mark.slow
def test_reference_data_gives_the_r_formats_and_the_report(reference_dir: Path, tmp_path: Path) -> None:
    out = analyze(tmp_path, scores=reference_dir / "scores.csv", patients=reference_dir / "patients.csv")
    for name in ("means.csv", "clmm.csv", "kappa.csv", "table1_tests.csv", "paired.csv", "report.html", "report.pdf"):
        assert (out / name).is_file(), name
    for name in ("means", "clmm", "kappa", "table1_tests", "paired"):
        ours, ref = pd.read_csv(out / f"{name}.csv"), pd.read_csv(reference_dir / f"ref_{name}.csv")
        assert list(ours.columns) == list(ref.columns)
        assert len(ours) == len(ref)
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Table 3." in html and "Table 6. Paired comparison per case" in html


def test_small_study_with_patients_and_rois(small_files: dict[str, Path], tmp_path: Path) -> None:
    out = analyze(tmp_path, **small_files)
    assert (out / "snr.csv").is_file() and (out / "table1_summary.csv").is_file()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Table 1." in html and "Table 2." in html


def test_a_flat_background_is_not_estimable_not_an_error(small_files: dict[str, Path], tmp_path: Path) -> None:
    """A DL background with SD 0 (a denoiser's flat air) leaves the paper's ratios out, counted, never inf."""
    rois = pd.read_csv(small_files["rois"])
    flat = (rois["roi"] == "background") & (rois["version"] == "dl") & (rois["sequence"] == "T2W")
    rois.loc[flat[flat].index[:2], "sd"] = 0.0
    rois.to_csv(small_files["rois"], index=False)
    out = analyze(tmp_path, **small_files)
    text = (out / "snr.csv").read_text(encoding="utf-8")
    assert "inf" not in text.lower()
    snr = pd.read_csv(out / "snr.csv").set_index(["sequence", "measure"])
    images = int(flat.sum())
    for measure in ("snr1", "snr2", "cnr"):
        assert snr.loc[("T2W", measure), "n_not_estimable_dl"] == 2
        assert snr.loc[("T2W", measure), "n_dl"] == images - 2
        assert snr.loc[("FLAIR", measure), "n_not_estimable_dl"] == 0
    assert snr.loc[("T2W", "snr1_tissue"), "n_dl"] == images
    assert "[2 n.e.]" in (out / "report.html").read_text(encoding="utf-8")


def test_long_export_drops_calibration_and_unsubmitted(small_files: dict[str, Path], tmp_path: Path) -> None:
    scores = pd.read_csv(small_files["scores"])
    scores["calibration"] = "FALSE"
    scores["task_status"] = "submitted"
    extra = scores.iloc[:2].copy()
    extra["score"] = 9  # would be refused if it reached the analysis
    extra["calibration"] = "TRUE"
    pending = scores.iloc[2:4].copy()
    pending["score"] = "NA"
    pending["task_status"] = "opened"
    pd.concat([scores, extra, pending]).to_csv(small_files["scores"], index=False)
    out = analyze(tmp_path, scores=small_files["scores"])
    assert pd.read_csv(out / "means.csv")["n"].sum() == len(scores)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"case_id,patient_id\n", "no rows"),
        (b"case_id,site\nC1,A\n", "missing column(s) patient_id"),
        ("case_id,patient_id,site,reader,sequence,version,item,score\nC1,P1,Zürich,R1,T2W,dl,noise,3\n".encode(
            "latin-1"), "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "NUL bytes"),
        (b'case_id,patient_id\n"C1,P1\nC2,P2,extra,x\n', "not a readable CSV"),
        (b"case_id,patient_id,site,reader,sequence,version,item,score\nC1,P1,A,R1,T2W,dl,noise,6\n", "1..5"),
        (b"case_id,patient_id,site,reader,sequence,version,item,score\nC1,P1,A,R1,T2W,enhanced,noise,3\n",
         "unknown version"),
    ],
)
def test_bad_score_files_are_refused_clearly(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "scores.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=re.escape(message)):
        analyze(tmp_path, scores=path)
    assert not (tmp_path / "out" / "report.html").exists()


def test_missing_and_huge_files_are_refused(small_files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is not a file"):
        analyze(tmp_path, scores=tmp_path / "nope.csv")
    with pytest.raises(CommandError, match="more than"):
        call_command("analyze_scores", f"--scores={small_files['scores']}", f"--out={tmp_path}", "--max-bytes=1000")


def test_bad_patient_file_is_refused(small_files: dict[str, Path], tmp_path: Path) -> None:
    small_files["patients"].write_text("patient_id,site,age\nA00,A,40\n", encoding="utf-8")
    with pytest.raises(CommandError, match="patients: missing column"):
        analyze(tmp_path, scores=small_files["scores"], patients=small_files["patients"])


def test_formula_like_values_are_data_not_code(small_files: dict[str, Path], tmp_path: Path) -> None:
    scores = pd.read_csv(small_files["scores"])
    scores["reader"] = scores["reader"].replace("R1", "=HYPERLINK(\"http://x\")")
    scores.to_csv(small_files["scores"], index=False)
    out = analyze(tmp_path, scores=small_files["scores"])
    assert "=HYPERLINK" in (out / "kappa.csv").read_text(encoding="utf-8")


def test_exit_status_is_non_zero_on_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n")
    env = {**os.environ, "READERSTUDY_ALLOW_INSECURE_KEY": "1"}
    done = subprocess.run(
        [sys.executable, "manage.py", "analyze_scores", f"--scores={bad}", f"--out={tmp_path / 'o'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "missing column(s)" in done.stderr
