"""`manage.py analyze_scores`: the full analysis of score CSVs, written as the R-format CSVs plus the report."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.analysis.exports import analysis_guesses, analysis_patients, analysis_scores
from apps.analysis.inputs import MAX_CSV_BYTES, InputError, read_csv_file
from apps.analysis.plan import read_frozen
from apps.analysis.report import ReportMeta, render_html, render_pdf
from apps.analysis.stats import run_analysis, write_outputs
from apps.analysis.stats.planned import LockedPlan


def read_plan(path: Path, limit: int) -> LockedPlan:
    """The frozen plan in the file at ``path``; ValueError (or InputError) in words for anything else."""
    try:
        if path.stat().st_size > limit:
            raise ValueError(f"{path}: the plan file is over {limit} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: the plan file cannot be read ({exc})") from exc
    try:
        return read_frozen(text.strip())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


class Command(BaseCommand):
    help = (
        "Analyses a long score CSV (one row per score; the long export works as is) and optional patient and "
        "ROI CSVs; writes means.csv, clmm.csv, kappa.csv, table1_tests.csv, paired.csv, ... and report.html / "
        "report.pdf."
    )
    # Works on files alone: no database, no URLs.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--scores", type=Path, required=True, help="Long score CSV, UTF-8.")
        parser.add_argument("--patients", type=Path, help="Patient characteristics CSV (Table 1).")
        parser.add_argument("--rois", type=Path, help="ROI measurements CSV (Table 2).")
        parser.add_argument("--out", type=Path, required=True, help="Folder for the outputs (created).")
        parser.add_argument("--title", default="Reader study analysis")
        parser.add_argument("--seed", type=int, help="Randomisation seed of the study, shown in the report.")
        parser.add_argument("--max-bytes", type=int, default=MAX_CSV_BYTES, help="Largest CSV accepted.")
        parser.add_argument(
            "--plan", type=Path,
            help="A study's locked analysis plan as JSON (the plan API's canonical_json): its primary analysis is "
                 "run (primary.csv, the report's Table 7) and every other analysis is marked exploratory.",
        )
        parser.add_argument(
            "--blinding", type=Path,
            help="The study's blinding answers (the 'blinding' export): the report's Table 8 and blinding.csv.",
        )
        parser.add_argument(
            "--session-effect", action="store_true",
            help="CLMMs with the reading session as a fixed effect (order effect; needs a session column, as the "
                 "long export of a study read in sessions has); clmm.csv gains coef_session, se_session, p_session.",
        )

    def handle(self, *, scores: Path, patients: Path | None, rois: Path | None, out: Path, **options) -> None:
        limit = options["max_bytes"]
        try:
            scores_df = analysis_scores(read_csv_file(scores, "scores", limit))
            patients_df = analysis_patients(read_csv_file(patients, "patients", limit)) if patients else None
            rois_df = read_csv_file(rois, "rois", limit) if rois else None
            locked = read_plan(options["plan"], limit) if options["plan"] else None
            guesses = (analysis_guesses(read_csv_file(options["blinding"], "blinding answers", limit))
                       if options["blinding"] else None)
            result = run_analysis(scores_df, patients_df, rois_df, plan=locked.spec if locked else None,
                                  guesses=guesses, session_effect=options["session_effect"])
        except (InputError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        try:
            written = write_outputs(result, out)
            meta = ReportMeta(title=options["title"], seed=options["seed"], plan=locked,
                              plan_note="analyze_scores was given no locked analysis plan (--plan)")
            html, pdf = out / "report.html", out / "report.pdf"
            html.write_text(render_html(result, meta), encoding="utf-8")
            pdf.write_bytes(render_pdf(result, meta))
        except OSError as exc:
            raise CommandError(f"Could not write to {out}: {exc}") from exc
        for path in [*written, html, pdf]:
            self.stdout.write(str(path))
        unconverged = result.clmm.loc[~result.clmm["converged"].astype(bool), ["sequence", "item", "note"]]
        for row in unconverged.itertuples():
            reason = f": {row.note}" if row.note else ""
            self.stderr.write(f"warning: the CLMM for {row.sequence} / {row.item} did not converge{reason}")
