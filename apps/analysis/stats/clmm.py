"""Cumulative link mixed model (logit link) with nested random intercepts, fitted by Laplace.

No mature Python package fits ``ordinal::clmm``; this module reproduces its default fit for the
model the paper uses::

    logit P(Y <= j) = theta_j - x'beta - b_site - b_patient,   b ~ N(0, sigma^2)

The sign convention is clmm's: a positive coefficient moves scores up. Random effects are
parameterised as in clmm, ``b = sigma * u`` with ``u ~ N(0, 1)``, and the marginal likelihood is the
Laplace approximation around the conditional mode of ``u``; the standard deviations are
optimised on their own scale with a lower bound of 0, and a standard deviation below 1e-3 counts
as being on the boundary and is left out of the Hessian, exactly as clmm does.

Patients are nested in sites, so the Hessian of the inner problem is an arrow matrix (a diagonal
patient block plus a few site rows). Newton steps and the log-determinant come from a Schur
complement over the sites in O(n) numpy work, instead of a sparse Cholesky.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit, log_expit

BOUNDARY_SD = 1e-3
_INNER_TOL = 1e-20
_FULL_STEP_DECREMENT = 1e-4
_INNER_MAX_ITER = 100


@dataclass(frozen=True)
class ClmmFit:
    """Estimates of one fit; coefficients and their standard errors are keyed by column name."""

    coef: dict[str, float]
    se: dict[str, float]
    thresholds: np.ndarray
    loglik: float
    sd_group: float
    sd_cluster: float
    n_obs: int
    n_groups: int
    n_clusters: int
    converged: bool

    @property
    def var_group(self) -> float:
        return self.sd_group**2

    @property
    def var_cluster(self) -> float:
        return self.sd_cluster**2

    def z(self, name: str) -> float:
        return self.coef[name] / self.se[name]

    def p(self, name: str) -> float:
        """Two-sided Wald p-value, as in ``summary.clmm``."""
        return float(2.0 * stats.norm.sf(abs(self.z(name))))


def _obs_terms(theta: np.ndarray, y: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return -log P(Y=y), and its first and second derivatives with respect to eta.

    ``P = F(a) - F(c)`` is evaluated as ``F(a) (1 - F(c)) (1 - exp(c - a))`` so that neither tail
    loses precision to cancellation.
    """
    ext = np.concatenate(([-np.inf], theta, [np.inf]))
    a = ext[y + 1] - eta
    c = ext[y] - eta
    log_p = log_expit(a) + log_expit(-c) + np.log(-np.expm1(c - a))
    p = np.exp(log_p)
    fa_cdf = expit(a)
    fc_cdf = expit(c)
    fa = fa_cdf * (1.0 - fa_cdf)
    fc = fc_cdf * (1.0 - fc_cdf)
    d1 = (fa - fc) / p
    d2 = d1 * d1 - (fa * (1.0 - 2.0 * fa_cdf) - fc * (1.0 - 2.0 * fc_cdf)) / p
    return -log_p, d1, d2


class _NestedLaplace:
    """Laplace negative log-likelihood for one data set; keeps the last conditional mode as a warm start."""

    def __init__(self, y: np.ndarray, x: np.ndarray, group: np.ndarray, cluster_of_group: np.ndarray) -> None:
        self.y = y
        self.x = x
        self.group = group
        self.cluster_of_group = cluster_of_group
        self.cluster = cluster_of_group[group]
        self.n_groups = int(cluster_of_group.size)
        self.n_clusters = int(cluster_of_group.max()) + 1
        self.u_group = np.zeros(self.n_groups)
        self.u_cluster = np.zeros(self.n_clusters)

    def _joint(self, eta_fix, theta, sd_g, sd_c, u_g, u_c):
        eta = eta_fix + sd_g * u_g[self.group] + sd_c * u_c[self.cluster]
        nll, d1, d2 = _obs_terms(theta, self.y, eta)
        value = nll.sum() + 0.5 * (u_g @ u_g + u_c @ u_c)
        return value, d1, d2

    def nla(self, theta: np.ndarray, beta: np.ndarray, sd_g: float, sd_c: float) -> float:
        """Laplace approximation to the negative marginal log-likelihood (clmm's ``getNLA``)."""
        if np.any(np.diff(theta) <= 0):
            return np.inf
        eta_fix = self.x @ beta
        u_g, u_c = self.u_group.copy(), self.u_cluster.copy()
        value, d1, d2 = self._joint(eta_fix, theta, sd_g, sd_c, u_g, u_c)
        for _ in range(_INNER_MAX_ITER):
            grad_g = sd_g * np.bincount(self.group, d1, self.n_groups) + u_g
            grad_c = sd_c * np.bincount(self.cluster, d1, self.n_clusters) + u_c
            w_g = np.bincount(self.group, d2, self.n_groups)
            h_gg = sd_g * sd_g * w_g + 1.0
            h_gc = sd_g * sd_c * w_g
            schur = sd_c * sd_c * np.bincount(self.cluster, d2, self.n_clusters) + 1.0
            schur -= np.bincount(self.cluster_of_group, h_gc * h_gc / h_gg, self.n_clusters)
            rhs_c = grad_c - np.bincount(self.cluster_of_group, h_gc * grad_g / h_gg, self.n_clusters)
            step_c = rhs_c / schur
            step_g = (grad_g - h_gc * step_c[self.cluster_of_group]) / h_gg
            decrement = grad_g @ step_g + grad_c @ step_c
            if decrement < _INNER_TOL:
                break
            factor = 1.0
            while True:
                new_g, new_c = u_g - factor * step_g, u_c - factor * step_c
                new_value, new_d1, new_d2 = self._joint(eta_fix, theta, sd_g, sd_c, new_g, new_c)
                if decrement < _FULL_STEP_DECREMENT or new_value <= value or factor < 1e-3:
                    break
                factor /= 2.0
            u_g, u_c, value, d1, d2 = new_g, new_c, new_value, new_d1, new_d2
        self.u_group, self.u_cluster = u_g, u_c
        log_det = np.log(h_gg).sum() + np.log(schur).sum()
        return float(value + 0.5 * log_det)


def _theta_from_free(free: np.ndarray) -> np.ndarray:
    return np.cumsum(np.concatenate((free[:1], np.exp(free[1:]))))


def _free_from_theta(theta: np.ndarray) -> np.ndarray:
    return np.concatenate((theta[:1], np.log(np.diff(theta))))


def _central_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, step: float) -> np.ndarray:
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = step
        grad[i] = (f(x + e) - f(x - e)) / (2.0 * step)
    return grad


def _central_hessian(f: Callable[[np.ndarray], float], x: np.ndarray, step: float) -> np.ndarray:
    k = x.size
    hess = np.empty((k, k))
    f0 = f(x)
    eye = np.eye(k) * step
    for i in range(k):
        hess[i, i] = (f(x + eye[i]) - 2.0 * f0 + f(x - eye[i])) / step**2
        for j in range(i):
            value = (
                f(x + eye[i] + eye[j])
                - f(x + eye[i] - eye[j])
                - f(x - eye[i] + eye[j])
                + f(x - eye[i] - eye[j])
            ) / (4.0 * step**2)
            hess[i, j] = hess[j, i] = value
    return hess


def fit_clm_start(y: np.ndarray, x: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit the plain cumulative logit model (no random effects); clmm starts from this fit too."""
    n_theta = n_levels - 1
    cum = np.cumsum(np.bincount(y, minlength=n_levels))[:-1] / y.size
    start = np.concatenate((_free_from_theta(np.log(cum / (1.0 - cum))), np.zeros(x.shape[1])))

    def objective(par: np.ndarray) -> tuple[float, np.ndarray]:
        theta = _theta_from_free(par[:n_theta])
        beta = par[n_theta:]
        ext = np.concatenate(([-np.inf], theta, [np.inf]))
        a = ext[y + 1] - x @ beta
        c = ext[y] - x @ beta
        log_p = log_expit(a) + log_expit(-c) + np.log(-np.expm1(c - a))
        p = np.exp(log_p)
        fa = expit(a) * expit(-a)
        fc = expit(c) * expit(-c)
        d_theta = np.bincount(y, fc / p, n_levels)[1:] - np.bincount(y, fa / p, n_levels)[:n_theta]
        d_free = np.cumsum(d_theta[::-1])[::-1] * np.concatenate(([1.0], np.exp(par[1:n_theta])))
        d_beta = x.T @ ((fa - fc) / p)
        return float(-log_p.sum()), np.concatenate((d_free, d_beta))

    res = optimize.minimize(objective, start, jac=True, method="BFGS", options={"gtol": 1e-8})
    return _theta_from_free(res.x[:n_theta]), res.x[n_theta:]


def fit_clmm(
    y: np.ndarray,
    x: np.ndarray,
    group: np.ndarray,
    cluster: np.ndarray,
    names: list[str],
) -> ClmmFit:
    """Fit ``y ~ x + (1 | cluster) + (1 | group)`` with groups nested in clusters.

    ``y`` holds category codes 0..K-1 (every category observed), ``x`` the fixed-effect columns
    without intercept, ``group`` and ``cluster`` per-observation integer codes. Raises
    ``ValueError`` when a group belongs to more than one cluster, because the Schur-complement
    Laplace used here relies on nesting.
    """
    y = np.asarray(y, dtype=np.intp)
    x = np.asarray(x, dtype=float)
    group = np.asarray(group, dtype=np.intp)
    cluster = np.asarray(cluster, dtype=np.intp)
    n_levels = int(y.max()) + 1
    if np.unique(y).size != n_levels or n_levels < 2:
        raise ValueError("clmm needs codes 0..K-1 with every category observed and K >= 2")
    n_groups = int(group.max()) + 1
    cluster_of_group = np.full(n_groups, -1)
    cluster_of_group[group] = cluster
    if np.any(cluster_of_group[group] != cluster) or np.any(cluster_of_group < 0):
        raise ValueError("every group must belong to exactly one cluster (nested random effects)")

    model = _NestedLaplace(y, x, group, cluster_of_group)
    n_theta, n_beta = n_levels - 1, x.shape[1]
    theta0, beta0 = fit_clm_start(y, x, n_levels)

    def objective(par: np.ndarray) -> float:
        return model.nla(_theta_from_free(par[:n_theta]), par[n_theta:-2], par[-2], par[-1])

    def fun_and_grad(par: np.ndarray) -> tuple[float, np.ndarray]:
        return objective(par), _central_gradient(objective, par, 1e-6)

    start = np.concatenate((_free_from_theta(theta0), beta0, [1.0, 1.0]))
    bounds = [(None, None)] * (n_theta + n_beta) + [(0.0, None)] * 2
    res = optimize.minimize(
        fun_and_grad,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 500},
    )
    theta = _theta_from_free(res.x[:n_theta])
    beta = res.x[n_theta:-2]
    sds = res.x[-2:].copy()
    loglik = -model.nla(theta, beta, sds[0], sds[1])

    free_sd = sds >= BOUNDARY_SD
    natural = np.concatenate((theta, beta, sds[free_sd]))

    def natural_objective(par: np.ndarray) -> float:
        sd = sds.copy()
        sd[free_sd] = par[n_theta + n_beta :]
        return model.nla(par[:n_theta], par[n_theta : n_theta + n_beta], sd[0], sd[1])

    hessian = _central_hessian(natural_objective, natural, 1e-4)
    cov = np.linalg.inv(hessian)
    se_beta = np.sqrt(np.diag(cov)[n_theta : n_theta + n_beta])
    return ClmmFit(
        coef=dict(zip(names, beta.tolist(), strict=True)),
        se=dict(zip(names, se_beta.tolist(), strict=True)),
        thresholds=theta,
        loglik=loglik,
        sd_group=float(sds[0]),
        sd_cluster=float(sds[1]),
        n_obs=int(y.size),
        n_groups=n_groups,
        n_clusters=int(cluster_of_group.max()) + 1,
        converged=bool(res.success),
    )


CLMM_COLUMNS = [
    "sequence",
    "item",
    "coef_version_dl",
    "se",
    "z",
    "p",
    "loglik",
    "var_patient",
    "var_site",
    "thresholds",
]


def fit_item(block: pd.DataFrame) -> ClmmFit:
    """Fit ``ordered(score) ~ version + reader + (1 | site) + (1 | patient_id)`` to one sequence x item.

    Reference levels are ``conventional`` and the first reader in sorted order, as R's treatment
    contrasts would choose; categories are the observed scores, as ``ordered(score)`` makes them.
    """
    levels = np.sort(block["score"].unique())
    y = np.searchsorted(levels, block["score"].to_numpy())
    readers = sorted(block["reader"].unique())
    columns = [(block["version"] == "dl").to_numpy(dtype=float)]
    names = ["version_dl"]
    for reader in readers[1:]:
        columns.append((block["reader"] == reader).to_numpy(dtype=float))
        names.append(f"reader_{reader}")
    group = pd.factorize(block["patient_id"])[0]
    cluster = pd.factorize(block["site"])[0]
    return fit_clmm(y, np.column_stack(columns), group, cluster, names)


def clmm_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One CLMM per sequence x item; the version effect in ``ref_clmm.csv`` columns plus fit diagnostics."""
    rows = []
    for (sequence, item), block in scores.groupby(["sequence", "item"], sort=False):
        if block["version"].nunique() < 2 or block["score"].nunique() < 2:
            rows.append((sequence, item, *[np.nan] * 7, "", len(block), False))
            continue
        fit = fit_item(block)
        rows.append(
            (
                sequence,
                item,
                fit.coef["version_dl"],
                fit.se["version_dl"],
                fit.z("version_dl"),
                fit.p("version_dl"),
                fit.loglik,
                fit.var_group,
                fit.var_cluster,
                ";".join(f"{t:.6f}" for t in fit.thresholds),
                fit.n_obs,
                fit.converged,
            )
        )
    return pd.DataFrame(rows, columns=[*CLMM_COLUMNS, "n", "converged"])
