"""The CLMM's exact gradient (issue 14, item 1): it equals central differences of the Laplace likelihood
everywhere the optimiser goes, and a fit with it equals the fit with numeric gradients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from apps.analysis.stats import clmm as clmm_module
from apps.analysis.stats.clmm import _NestedLaplace, clmm_table, fit_clmm
from apps.analysis.stats.validation import validate_scores


def _model(block: pd.DataFrame) -> tuple[_NestedLaplace, int]:
    levels = np.sort(block["score"].unique())
    y = np.searchsorted(levels, block["score"].to_numpy())
    x = np.column_stack(
        [block["version"] == "dl", block["reader"] == "R2", block["reader"] == "R3"]
    ).astype(float)
    group = pd.factorize(block["patient_id"])[0]
    cluster_of_group = np.full(group.max() + 1, -1)
    cluster_of_group[group] = pd.factorize(block["site"])[0]
    return _NestedLaplace(y, x, group, cluster_of_group), levels.size


@pytest.fixture(scope="module")
def scores(reference_dir) -> pd.DataFrame:
    return validate_scores(pd.read_csv(reference_dir / "scores.csv"))


@pytest.mark.parametrize(
    ("sequence", "item"), [("FLAIR", "noise"), ("T2W", "pulsation_artifact"), ("T1W_POST", "motion_artifact")]
)
@pytest.mark.parametrize(
    ("sd_patient", "sd_site"), [(0.9, 0.4), (2.5, 0.0), (0.0, 0.3), (0.05, 1.9)], ids=str
)
def test_exact_gradient_equals_central_differences(scores, sequence, item, sd_patient, sd_site) -> None:
    """At points away from the optimum too (the optimiser's path), standard deviations on the boundary included."""
    model, n_levels = _model(scores[(scores["sequence"] == sequence) & (scores["item"] == item)])
    par = np.concatenate((np.linspace(-3.5, 2.0, n_levels - 1), [0.7, 0.4, -0.3, sd_patient, sd_site]))
    theta, beta = par[: n_levels - 1], par[n_levels - 1 : -2]

    def nla(p: np.ndarray) -> float:
        return model.nla(p[: n_levels - 1], p[n_levels - 1 : -2], p[-2], p[-1])

    value, grad = model.nla_grad(theta, beta, sd_patient, sd_site)
    assert value == pytest.approx(nla(par), rel=1e-12)
    numeric = clmm_module._central_gradient(nla, par, 1e-5)
    np.testing.assert_allclose(grad, numeric, rtol=0, atol=2e-6 * max(1.0, np.abs(numeric).max()))


def test_exact_and_numeric_gradient_fits_agree(scores) -> None:
    """The same optimum either way: coefficient, standard error and log-likelihood."""
    block = scores[(scores["sequence"] == "T2W") & (scores["item"] == "noise")]
    exact = clmm_table(block, gradient="exact").iloc[0]
    numeric = clmm_table(block, gradient="numeric").iloc[0]
    assert exact["converged"] and numeric["converged"]
    assert exact["coef_version_dl"] == pytest.approx(numeric["coef_version_dl"], abs=1e-5)
    assert exact["se"] == pytest.approx(numeric["se"], rel=1e-4)
    assert exact["loglik"] == pytest.approx(numeric["loglik"], abs=1e-6)
    assert exact["var_patient"] == pytest.approx(numeric["var_patient"], rel=1e-4)


def test_exact_gradient_needs_far_fewer_likelihood_evaluations(scores, monkeypatch) -> None:
    """Where the time went: numeric gradients evaluate the Laplace likelihood 2 x 9 times per gradient and
    about 2 k^2 times for the Hessian; the exact path once per gradient."""
    block = scores[(scores["sequence"] == "FLAIR") & (scores["item"] == "overall_quality")]
    counts: dict[str, int] = {}
    real_mode = _NestedLaplace._mode

    def counting_mode(self, *args):
        counts[self.path] = counts.get(self.path, 0) + 1
        return real_mode(self, *args)

    monkeypatch.setattr(_NestedLaplace, "_mode", counting_mode)
    for path in ("exact", "numeric"):
        monkeypatch.setattr(_NestedLaplace, "path", path, raising=False)
        clmm_table(block, gradient=path)
    assert counts["numeric"] > 5 * counts["exact"], counts


def test_unknown_gradient_is_refused() -> None:
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 2, 0])
    with pytest.raises(ValueError, match="gradient"):
        fit_clmm(y, (np.arange(12) % 2)[:, None], np.arange(12) // 2, np.arange(12) // 2 % 3, ["v"], "adjoint")
