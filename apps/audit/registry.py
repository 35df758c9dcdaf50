"""Which models and fields the audit trail records, in one table.

Fields are named one by one (never "all fields"), so nothing a de-identification key could be derived from
(the per-case date shift, the keyed patient hash), no password hash and no large derived value reaches the log.
"""

from auditlog.registry import auditlog
from django.apps import apps

AUDITED: dict[str, dict[str, list[str]]] = {
    "institutions.Institution": {"fields": ["name", "code", "pseudonym"]},
    "accounts.User": {
        "fields": ["username", "first_name", "last_name", "email", "role", "institution", "pseudonym",
                   "is_active", "is_staff", "is_superuser"],
    },
    "imaging.Case": {
        "fields": ["code", "institution", "age", "sex", "tumour_type", "who_grade", "idh_status",
                   "codeletion_1p19q"],
    },
    "imaging.Series": {
        "fields": ["case", "sequence", "sequence_overridden", "version", "source", "conventional", "dl_model",
                   "dl_factor", "status"],
    },
    "imaging.DicomNode": {"fields": ["ae_title", "institution", "allowed_host"]},
    "privacy.TextFinding": {"fields": ["series", "sop_uid", "boxes", "status", "blanked_sop_uid", "resolved_by"]},
    "enhancement_models.EnhancementModel": {
        "fields": ["name", "version", "runtime", "built_in", "sha256", "size", "licence", "slices", "normalisation",
                   "max_matrix", "pad_multiple", "context_input", "registered_by", "retired", "retired_by",
                   "retired_reason"],
    },
    "imaging.EnhancementJob": {"fields": ["series", "model", "noise_reduction_factor", "qa_flagged", "qa_accepted_by",
                                          "qa_accepted_at"]},
    "studies.ReaderStudy": {
        "fields": ["title", "reader_label", "sequences", "mode", "readers_per_case", "cross_site", "min_distance",
                   "seed", "dl_source", "dl_model", "dl_factor", "window_presets", "allow_revision", "sessions",
                   "washout_days", "status"],
        "m2m": ["cases", "calibration_cases"],
    },
    "studies.StudyItem": {"fields": ["study", "key", "label", "anchors", "order"]},
    "studies.StudyReader": {"fields": ["study", "reader"]},
    "studies.TaskRevision": {"fields": ["task", "reader", "opened_at", "submitted_at"]},
    "analysis.AnalysisPlan": {
        "fields": ["study", "primary_items", "primary_sequences", "test", "hypothesis", "margin", "alpha",
                   "multiplicity", "session_effect", "frozen_at", "sha256"],
    },
    "analysis.BlindingQuestion": {"fields": ["study", "created_by"]},
    "analysis.RoiMeasurement": {
        "fields": ["task", "label", "drawn_by", "slice_index", "center_row", "center_col", "radius_rows",
                   "radius_cols"],
    },
}


def register_audited_models() -> None:
    for label, spec in AUDITED.items():
        model = apps.get_model(label)
        if not auditlog.contains(model):
            auditlog.register(model, include_fields=spec["fields"], m2m_fields=set(spec.get("m2m", [])))
