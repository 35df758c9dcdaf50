"""Statistics core of the analysis app: plain pandas/numpy/scipy, usable on CSV files without Django."""

from .pipeline import AnalysisResult, run_analysis, write_outputs

__all__ = ["AnalysisResult", "run_analysis", "write_outputs"]
