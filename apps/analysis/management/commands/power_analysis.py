"""`manage.py power_analysis`: power curves of a planned study from a pilot (a study of this platform or a long
score CSV), written as power.csv, pilot.csv and power.png."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.analysis import power
from apps.analysis.exports import analysis_scores
from apps.analysis.inputs import MAX_CSV_BYTES, InputError, read_csv_file
from apps.studies.models import ReaderStudy


class Command(BaseCommand):
    help = (
        "Simulates complete studies from a pilot for a grid of cases x readers x readers per case (x mode) and "
        "writes the power of the planned test per design with its Monte-Carlo error (power.csv), the pilot's "
        "parameters (pilot.csv) and the power curves (power.png)."
    )

    def add_arguments(self, parser) -> None:
        pilot = parser.add_mutually_exclusive_group(required=True)
        pilot.add_argument("--study", type=int, help="Id of a study of this platform used as pilot (its scores).")
        pilot.add_argument("--scores", type=Path, help="Long score CSV used as pilot (the long export works as is).")
        parser.add_argument("--out", type=Path, required=True, help="Folder for the outputs (created).")
        parser.add_argument("--sequences", help="Primary sequences, comma-separated (default: the study's plan).")
        parser.add_argument("--items", help="Primary items, comma-separated (default: the study's plan).")
        parser.add_argument("--test", choices=["clmm", "wilcoxon"])
        parser.add_argument("--hypothesis", choices=["superiority", "non_inferiority"])
        parser.add_argument("--margin", help="Non-inferiority margin: log odds ratio (CLMM), score points (Wilcoxon).")
        parser.add_argument("--alpha")
        parser.add_argument("--multiplicity", choices=["holm", "none"])
        parser.add_argument("--cases", default="20,40,80,160", help="Case counts, comma-separated.")
        parser.add_argument("--readers", default="2,3,4", help="Reader counts, comma-separated.")
        parser.add_argument("--readers-per-case", default="2", help="Readers per case, comma-separated.")
        parser.add_argument("--modes", default="single", help="single, paired or both, comma-separated.")
        parser.add_argument("--sites", default="3", help="Sites the cases come from.")
        parser.add_argument("--studies", help="Simulated studies per design (default 500 Wilcoxon, 50 CLMM).")
        parser.add_argument("--effect", default="pilot", help="'pilot', or the DL effect as a log odds ratio.")
        parser.add_argument("--reader-case-sd", type=float, help="Reader x case SD instead of the pilot's.")
        parser.add_argument("--seed", default="2026")
        parser.add_argument("--title", default="Power of the planned study")
        parser.add_argument("--max-bytes", type=int, default=MAX_CSV_BYTES, help="Largest CSV accepted.")

    def handle(self, *, out: Path, **options) -> None:
        if options["study"] is not None:
            study = ReaderStudy.objects.filter(pk=options["study"]).first()
            if study is None:
                raise CommandError(f"No study {options['study']}.")
            values = {k: v for k, v in power.default_settings(study).items() if k in power.PLAN_FIELDS}
            scores = power.study_scores(study)
        else:
            values = {"test": "wilcoxon", "hypothesis": "superiority", "alpha": 0.05, "multiplicity": "holm"}
            try:
                scores = analysis_scores(read_csv_file(options["scores"], "scores", options["max_bytes"]))
            except (InputError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
        for name in ("sequences", "items", "test", "hypothesis", "margin", "alpha", "multiplicity"):
            if options[name] is not None:
                values[name] = options[name]
        values.update(cases=options["cases"], readers=options["readers"], readers_per_case=options["readers_per_case"],
                      modes=options["modes"], n_sites=options["sites"], effect=options["effect"], seed=options["seed"])
        values["n_studies"] = options["studies"] or (50 if values.get("test") == "clmm" else 500)
        try:
            spec, grid = power.parse_settings(values, scores)
            curves = power.run(scores, spec, grid, lambda done, total: self.stderr.write(f"design {done}/{total}"),
                               options["reader_case_sd"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            written = power.write_outputs(curves, out, options["title"])
        except OSError as exc:
            raise CommandError(f"Could not write to {out}: {exc}") from exc
        for path in written:
            self.stdout.write(str(path))
