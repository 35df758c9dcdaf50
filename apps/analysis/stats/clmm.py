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

The outer optimiser gets the exact gradient of the Laplace likelihood (``_NestedLaplace.nla_grad``:
the partial derivatives at the mode plus the log-determinant's change through the mode, by implicit
differentiation), which costs about one likelihood evaluation where central differences cost 2 per
parameter; the Hessian for the standard errors is central differences of that gradient.

Small or degenerate data (a pilot, a study in progress) never raise: where R's ``clmm`` would stop
(fewer than two score categories, a grouping factor with fewer than three levels, as many random
effects as observations, an optimiser error) the fit comes back with NaN estimates,
``converged=False`` and a ``note``; aliased fixed-effect columns are dropped as ``drop.coef`` does,
and a Hessian that is not positive definite leaves the estimates but gives NaN standard errors, as
``summary.clmm`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit, log_expit
from threadpoolctl import threadpool_limits

BOUNDARY_SD = 1e-3
ALIAS_TOL = 1e-7  # drop.coef's QR tolerance
MIN_GROUP_LEVELS = 3  # clmm stops unless every grouping factor has more than two levels
_INNER_TOL = 1e-20
_FULL_STEP_DECREMENT = 1e-4
_INNER_MAX_ITER = 100
GRADIENTS = ("exact", "numeric")


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
    note: str = ""

    @property
    def var_group(self) -> float:
        return self.sd_group**2

    @property
    def var_cluster(self) -> float:
        return self.sd_cluster**2

    def z(self, name: str) -> float:
        """Wald z; NaN where the standard error is undefined."""
        se = self.se[name]
        return self.coef[name] / se if se > 0 else math.nan

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


@dataclass(frozen=True)
class _ObsDerivatives:
    """Per-observation derivatives of ``l = -log P(Y=y)`` beyond the second in eta.

    ``a = theta_y - eta`` and ``c = theta_(y-1) - eta`` are the upper and lower cut-points; a
    function of (a, c) moves with eta as ``-(d/da + d/dc)``, so these give every threshold and eta
    derivative the exact gradient of the Laplace likelihood needs.
    """

    l_a: np.ndarray  # dl/da
    l_c: np.ndarray  # dl/dc
    d1_a: np.ndarray  # d(dl/deta)/da
    d1_c: np.ndarray
    d2_a: np.ndarray  # d(d2l/deta2)/da
    d2_c: np.ndarray
    d3: np.ndarray  # d3l/deta3


def _obs_derivatives(theta: np.ndarray, y: np.ndarray, eta: np.ndarray, d1: np.ndarray) -> _ObsDerivatives:
    """Third-order terms for the exact gradient; ``d1`` is ``_obs_terms``' first derivative at the same point.

    With the logistic ``F``, ``f = F(1-F)``, ``f' = f(1-2F)`` and ``f'' = f(1-6F+6F^2)``; the
    infinite outer cut-points give ``f = f' = f'' = 0`` exactly.
    """
    ext = np.concatenate(([-np.inf], theta, [np.inf]))
    a = ext[y + 1] - eta
    c = ext[y] - eta
    p = np.exp(log_expit(a) + log_expit(-c) + np.log(-np.expm1(c - a)))
    fa_cdf, fc_cdf = expit(a), expit(c)
    fa, fc = fa_cdf * (1.0 - fa_cdf), fc_cdf * (1.0 - fc_cdf)
    fa1, fc1 = fa * (1.0 - 2.0 * fa_cdf), fc * (1.0 - 2.0 * fc_cdf)
    fa2 = fa * (1.0 - 6.0 * fa_cdf * (1.0 - fa_cdf))
    fc2 = fc * (1.0 - 6.0 * fc_cdf * (1.0 - fc_cdf))
    p2 = (fa1 - fc1) / p
    d1_a = (fa1 - d1 * fa) / p
    d1_c = (d1 * fc - fc1) / p
    return _ObsDerivatives(
        l_a=-fa / p,
        l_c=fc / p,
        d1_a=d1_a,
        d1_c=d1_c,
        d2_a=2.0 * d1 * d1_a - fa2 / p + p2 * fa / p,
        d2_c=2.0 * d1 * d1_c + fc2 / p - p2 * fc / p,
        d3=(fa2 - fc2) / p - 3.0 * d1 * p2 + 2.0 * d1**3,
    )


class _NestedLaplace:
    """Laplace negative log-likelihood for one data set; keeps the last conditional mode as a warm start.

    The inner Hessian ``H = Z' diag(d2) Z + I`` is an arrow matrix: a diagonal patient block
    ``h_gg``, one patient-site entry ``h_gc`` per patient, and a site block whose Schur complement
    ``schur`` is diagonal too (every patient lies in one site), so every solve is elementwise.
    """

    def __init__(self, y: np.ndarray, x: np.ndarray, group: np.ndarray, cluster_of_group: np.ndarray) -> None:
        self.y = y
        self.x = x
        self.group = group
        self.cluster_of_group = cluster_of_group
        self.cluster = cluster_of_group[group]
        self.n_groups = int(cluster_of_group.size)
        self.n_clusters = int(cluster_of_group.max()) + 1
        self.n_levels = int(y.max()) + 1
        self.u_group = np.zeros(self.n_groups)
        self.u_cluster = np.zeros(self.n_clusters)

    def _joint(self, eta_fix, theta, sd_g, sd_c, u_g, u_c):
        eta = eta_fix + sd_g * u_g[self.group] + sd_c * u_c[self.cluster]
        nll, d1, d2 = _obs_terms(theta, self.y, eta)
        value = nll.sum() + 0.5 * (u_g @ u_g + u_c @ u_c)
        return value, eta, d1, d2

    def _arrow(self, d2: np.ndarray, sd_g: float, sd_c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w_g = np.bincount(self.group, d2, self.n_groups)
        h_gg = sd_g * sd_g * w_g + 1.0
        h_gc = sd_g * sd_c * w_g
        schur = sd_c * sd_c * np.bincount(self.cluster, d2, self.n_clusters) + 1.0
        schur -= np.bincount(self.cluster_of_group, h_gc * h_gc / h_gg, self.n_clusters)
        return h_gg, h_gc, schur

    def _solve(self, arrow, rhs_g: np.ndarray, rhs_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``H^-1 (rhs_g, rhs_c)`` through the Schur complement over the sites."""
        h_gg, h_gc, schur = arrow
        step_c = (rhs_c - np.bincount(self.cluster_of_group, h_gc * rhs_g / h_gg, self.n_clusters)) / schur
        step_g = (rhs_g - h_gc * step_c[self.cluster_of_group]) / h_gg
        return step_g, step_c

    def _mode(self, theta: np.ndarray, beta: np.ndarray, sd_g: float, sd_c: float):
        """Newton iterations to the conditional mode of ``u``; returns the joint value and the terms at the mode."""
        eta_fix = self.x @ beta
        u_g, u_c = self.u_group.copy(), self.u_cluster.copy()
        value, eta, d1, d2 = self._joint(eta_fix, theta, sd_g, sd_c, u_g, u_c)
        for _ in range(_INNER_MAX_ITER):
            grad_g = sd_g * np.bincount(self.group, d1, self.n_groups) + u_g
            grad_c = sd_c * np.bincount(self.cluster, d1, self.n_clusters) + u_c
            arrow = self._arrow(d2, sd_g, sd_c)
            step_g, step_c = self._solve(arrow, grad_g, grad_c)
            decrement = grad_g @ step_g + grad_c @ step_c
            if decrement < _INNER_TOL:
                break
            factor = 1.0
            while True:
                new_g, new_c = u_g - factor * step_g, u_c - factor * step_c
                new = self._joint(eta_fix, theta, sd_g, sd_c, new_g, new_c)
                if decrement < _FULL_STEP_DECREMENT or new[0] <= value or factor < 1e-3:
                    break
                factor /= 2.0
            u_g, u_c = new_g, new_c
            value, eta, d1, d2 = new
        else:
            arrow = self._arrow(d2, sd_g, sd_c)
        self.u_group, self.u_cluster = u_g, u_c
        return value, eta, d1, d2, u_g, u_c, arrow

    def nla(self, theta: np.ndarray, beta: np.ndarray, sd_g: float, sd_c: float) -> float:
        """Laplace approximation to the negative marginal log-likelihood (clmm's ``getNLA``)."""
        if np.any(np.diff(theta) <= 0):
            return np.inf
        value, *_, (h_gg, _, schur) = self._mode(theta, beta, sd_g, sd_c)
        return float(value + 0.5 * (np.log(h_gg).sum() + np.log(schur).sum()))

    def nla_grad(self, theta: np.ndarray, beta: np.ndarray, sd_g: float, sd_c: float) -> tuple[float, np.ndarray]:
        """``nla`` and its exact gradient with respect to ``(theta, beta, sd_g, sd_c)``.

        ``NLA(phi) = h(u*(phi), phi) + 1/2 log det H(u*(phi), phi)``. The first term's derivative is
        its partial one (``dh/du = 0`` at the mode). The log-determinant moves with ``phi`` directly
        and through the mode, ``du*/dphi = -H^-1 d(dh/du)/dphi``; with the leverages
        ``lev_i = z_i' H^-1 z_i`` and ``w = H^-1 (1/2 d logdet H / du)`` (one more arrow solve), every
        term is a sum over observations, so the gradient costs about one likelihood evaluation.
        """
        n_par = self.n_levels - 1 + beta.size + 2
        if np.any(np.diff(theta) <= 0):
            return np.inf, np.zeros(n_par)
        value, eta, d1, d2, u_g, u_c, arrow = self._mode(theta, beta, sd_g, sd_c)
        h_gg, h_gc, schur = arrow
        nla = float(value + 0.5 * (np.log(h_gg).sum() + np.log(schur).sum()))
        obs = _obs_derivatives(theta, self.y, eta, d1)
        # The entries of H^-1 each observation touches: its patient's diagonal, patient-site, site diagonal.
        schur_of_group = schur[self.cluster_of_group]
        inv_gg = 1.0 / h_gg + h_gc * h_gc / (h_gg * h_gg * schur_of_group)
        inv_gc = -h_gc / (h_gg * schur_of_group)
        inv_cc = 1.0 / schur
        g, c = self.group, self.cluster
        lev = sd_g * sd_g * inv_gg[g] + 2.0 * sd_g * sd_c * inv_gc[g] + sd_c * sd_c * inv_cc[c]
        half_d3_lev = 0.5 * obs.d3 * lev
        w_g, w_c = self._solve(
            arrow,
            sd_g * np.bincount(g, half_d3_lev, self.n_groups),
            sd_c * np.bincount(c, half_d3_lev, self.n_clusters),
        )
        t = sd_g * w_g[g] + sd_c * w_c[c]
        g_upper = obs.l_a + 0.5 * lev * obs.d2_a - t * obs.d1_a
        g_lower = obs.l_c + 0.5 * lev * obs.d2_c - t * obs.d1_c
        g_eta = d1 + half_d3_lev - t * d2
        k = self.n_levels
        g_theta = np.bincount(self.y, g_upper, k)[: k - 1] + np.bincount(self.y, g_lower, k)[1:]
        g_beta = self.x.T @ g_eta
        g_sd_g = (
            g_eta @ u_g[g]
            + d2 @ (sd_g * inv_gg[g] + sd_c * inv_gc[g])
            - w_g @ np.bincount(g, d1, self.n_groups)
        )
        g_sd_c = (
            g_eta @ u_c[c]
            + d2 @ (sd_c * inv_cc[c] + sd_g * inv_gc[g])
            - w_c @ np.bincount(c, d1, self.n_clusters)
        )
        return nla, np.concatenate((g_theta, g_beta, [g_sd_g, g_sd_c]))


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


def _gradient_hessian(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, step: float) -> np.ndarray:
    """Hessian as central differences of an exact gradient, symmetrised (2 gradients per parameter)."""
    k = x.size
    hess = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        hess[:, i] = (grad(x + e) - grad(x - e)) / (2.0 * step)
    return 0.5 * (hess + hess.T)


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


def identified_columns(x: np.ndarray, tol: float = ALIAS_TOL) -> np.ndarray:
    """Mask of the columns of ``x`` kept by ``drop.coef``: with an intercept first, a column aliased
    with the intercept or earlier kept columns (relative residual norm below ``tol``) is dropped."""
    basis = [np.full(x.shape[0], 1.0 / math.sqrt(x.shape[0]))]
    keep = np.zeros(x.shape[1], dtype=bool)
    for j in range(x.shape[1]):
        column = x[:, j]
        norm = np.linalg.norm(column)
        residual = column - np.column_stack(basis) @ (np.column_stack(basis).T @ column)
        if norm > 0 and np.linalg.norm(residual) > tol * norm:
            keep[j] = True
            basis.append(residual / np.linalg.norm(residual))
    return keep


def unfitted(names: list[str], note: str, n_obs: int, n_groups: int, n_clusters: int) -> ClmmFit:
    """A fit that R's ``clmm`` would refuse or fail on: NaN everywhere, not converged, with the reason."""
    nan = dict.fromkeys(names, math.nan)
    return ClmmFit(
        coef=nan,
        se=dict(nan),
        thresholds=np.array([]),
        loglik=math.nan,
        sd_group=math.nan,
        sd_cluster=math.nan,
        n_obs=n_obs,
        n_groups=n_groups,
        n_clusters=n_clusters,
        converged=False,
        note=note,
    )


def _standard_errors(hessian: np.ndarray, n: int) -> np.ndarray | None:
    """Standard errors of the first ``n`` parameters, or None where ``vcov.clm`` would refuse
    (a Hessian that is not finite or not positive definite)."""
    if not np.all(np.isfinite(hessian)):
        return None
    try:
        chol = np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return None
    inv_chol = np.linalg.solve(chol, np.eye(hessian.shape[0]))
    variances = np.einsum("ij,ij->j", inv_chol, inv_chol)[:n]
    return np.sqrt(variances) if np.all(np.isfinite(variances)) else None


def fit_clmm(
    y: np.ndarray,
    x: np.ndarray,
    group: np.ndarray,
    cluster: np.ndarray,
    names: list[str],
    gradient: str = "exact",
) -> ClmmFit:
    """Fit ``y ~ x + (1 | cluster) + (1 | group)`` with groups nested in clusters.

    ``y`` holds category codes 0..K-1 (every category observed), ``x`` the fixed-effect columns
    without intercept, ``group`` and ``cluster`` per-observation integer codes. Raises
    ``ValueError`` only for malformed arguments (codes with gaps, a group in more than one cluster,
    which the Schur-complement Laplace relies on); data too small or degenerate to fit give an
    ``unfitted`` result, aliased columns get NaN coefficients. ``gradient`` is ``"exact"`` (analytic)
    or ``"numeric"`` (central differences, the earlier path, for benchmarks).
    """
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, not {gradient!r}")
    y = np.asarray(y, dtype=np.intp)
    x = np.asarray(x, dtype=float).reshape(y.size, -1)
    group = np.asarray(group, dtype=np.intp)
    cluster = np.asarray(cluster, dtype=np.intp)
    n_levels = int(y.max()) + 1
    if np.unique(y).size != n_levels:
        raise ValueError("clmm needs codes 0..K-1 with every category observed")
    n_groups = int(group.max()) + 1
    cluster_of_group = np.full(n_groups, -1)
    cluster_of_group[group] = cluster
    if np.any(cluster_of_group[group] != cluster) or np.any(cluster_of_group < 0):
        raise ValueError("every group must belong to exactly one cluster (nested random effects)")
    n_clusters = int(cluster_of_group.max()) + 1
    counts = (int(y.size), n_groups, n_clusters)
    if n_levels < 2:
        return unfitted(names, "fewer than 2 score categories", *counts)
    if min(n_groups, n_clusters) < MIN_GROUP_LEVELS:
        return unfitted(
            names,
            f"{n_groups} patient(s) and {n_clusters} site(s); clmm needs at least {MIN_GROUP_LEVELS} of each",
            *counts,
        )
    if n_groups + n_clusters >= y.size:
        return unfitted(names, f"{n_groups + n_clusters} random effects for {y.size} observations", *counts)

    keep = identified_columns(x)
    fit = _fit_identified(y, x[:, keep], group, cluster_of_group, n_levels, gradient)
    if isinstance(fit, str):
        return unfitted(names, fit, *counts)
    theta, beta, sds, loglik, se_beta, converged, note = fit
    coef = np.full(len(names), math.nan)
    se = np.full(len(names), math.nan)
    coef[keep] = beta
    se[keep] = se_beta
    dropped = [name for name, kept in zip(names, keep, strict=True) if not kept]
    if dropped:
        note = "; ".join(filter(None, [f"aliased, dropped: {', '.join(dropped)}", note]))
    return ClmmFit(
        coef=dict(zip(names, coef.tolist(), strict=True)),
        se=dict(zip(names, se.tolist(), strict=True)),
        thresholds=theta,
        loglik=loglik,
        sd_group=float(sds[0]),
        sd_cluster=float(sds[1]),
        n_obs=counts[0],
        n_groups=n_groups,
        n_clusters=n_clusters,
        converged=converged,
        note=note,
    )


def _fit_identified(
    y: np.ndarray,
    x: np.ndarray,
    group: np.ndarray,
    cluster_of_group: np.ndarray,
    n_levels: int,
    gradient: str = "exact",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray, bool, str] | str:
    """Optimise the Laplace likelihood of a full-rank design; a string says why there is no fit.

    ``gradient="exact"`` (the default) gives L-BFGS-B the analytic gradient and takes the Hessian
    for the standard errors as central differences of it (2 gradients per parameter);
    ``"numeric"`` is the earlier path, central differences of the likelihood for both (2 and about
    2 k^2 evaluations), kept so a benchmark can time the two in one run.
    """
    model = _NestedLaplace(y, x, group, cluster_of_group)
    n_theta, n_beta = n_levels - 1, x.shape[1]

    def objective(par: np.ndarray) -> float:
        return model.nla(_theta_from_free(par[:n_theta]), par[n_theta:-2], par[-2], par[-1])

    def fun_and_grad(par: np.ndarray) -> tuple[float, np.ndarray]:
        if gradient == "numeric":
            return objective(par), _central_gradient(objective, par, 1e-6)
        free = par[:n_theta]
        value, grad = model.nla_grad(_theta_from_free(free), par[n_theta:-2], par[-2], par[-1])
        # theta_j = free_0 + sum_{1 <= i <= j} exp(free_i)
        grad[:n_theta] = np.cumsum(grad[:n_theta][::-1])[::-1] * np.concatenate(([1.0], np.exp(free[1:])))
        return value, grad

    # One BLAS thread: the problem is a few small vectors, and L-BFGS-B's many tiny BLAS calls wait
    # on OpenBLAS's thread hand-off (2 ms a call on two busy cores instead of microseconds).
    with np.errstate(all="ignore"), threadpool_limits(1, user_api="blas"):
        theta0, beta0 = fit_clm_start(y, x, n_levels)
        start = np.concatenate((_free_from_theta(theta0), beta0, [1.0, 1.0]))
        if not np.all(np.isfinite(start)):
            return "the fixed-effects start fit did not give finite values"
        bounds = [(None, None)] * (n_theta + n_beta) + [(0.0, None)] * 2
        try:
            res = optimize.minimize(
                fun_and_grad,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 500},
            )
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            return f"optimiser failed: {exc}"
        theta = _theta_from_free(res.x[:n_theta])
        beta = res.x[n_theta:-2]
        sds = res.x[-2:].copy()
        loglik = -model.nla(theta, beta, sds[0], sds[1])
        if not (np.all(np.isfinite(res.x)) and math.isfinite(loglik)):
            return f"optimiser failed: no finite optimum ({res.message})"

        free_sd = sds >= BOUNDARY_SD
        natural = np.concatenate((theta, beta, sds[free_sd]))
        n_fixed = n_theta + n_beta

        def natural_sds(par: np.ndarray) -> np.ndarray:
            sd = sds.copy()
            sd[free_sd] = par[n_fixed:]
            return sd

        if gradient == "numeric":

            def natural_objective(par: np.ndarray) -> float:
                sd = natural_sds(par)
                return model.nla(par[:n_theta], par[n_theta:n_fixed], sd[0], sd[1])

            hessian = _central_hessian(natural_objective, natural, 1e-4)
        else:

            def natural_gradient(par: np.ndarray) -> np.ndarray:
                sd = natural_sds(par)
                grad = model.nla_grad(par[:n_theta], par[n_theta:n_fixed], sd[0], sd[1])[1]
                return np.concatenate((grad[:n_fixed], grad[n_fixed:][free_sd]))

            hessian = _gradient_hessian(natural_gradient, natural, 1e-4)
        se_all = _standard_errors(hessian, n_fixed)
    converged = bool(res.success)
    notes = [] if converged else [f"optimiser: {res.message}"]
    if se_all is None:
        converged = False
        notes.append("Hessian not positive definite: standard errors undefined")
        se_all = np.full(n_fixed, math.nan)
    return theta, beta, sds, loglik, se_all[n_theta:], converged, "; ".join(notes)


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


# With the session as a fixed effect (a study read in sessions): the later sessions' shift against session 1, the
# order effect. Session 2 of a two-session study is ``session_2``; clmm.csv gains these columns for it.
SESSION_COLUMNS = ["coef_session", "se_session", "p_session"]
SESSION_TERM = "session_2"


def fit_item(block: pd.DataFrame, gradient: str = "exact", session: bool = False) -> ClmmFit:
    """Fit ``ordered(score) ~ version + reader + (1 | site) + (1 | patient_id)`` to one sequence x item; with
    ``session``, ``+ factor(session)`` after the readers (one column per session after the first).

    Reference levels are ``conventional``, the first reader in sorted order and session 1, as R's treatment
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
    if session:
        for number in sorted(block["session"].unique())[1:]:
            columns.append((block["session"] == number).to_numpy(dtype=float))
            names.append(f"session_{number}")
    group = pd.factorize(block["patient_id"])[0]
    cluster = pd.factorize(block["site"])[0]
    return fit_clmm(y, np.column_stack(columns), group, cluster, names, gradient)


def clmm_table(scores: pd.DataFrame, gradient: str = "exact", session: bool = False) -> pd.DataFrame:
    """One CLMM per sequence x item: the version effect in ``ref_clmm.csv`` columns, then ``n``,
    ``converged`` and ``note`` (why a fit is missing or doubtful), which ``clmm.csv`` leaves out.

    With ``session`` (``scores`` has a ``session`` column), session is a fixed effect too and the session 2 term
    follows in ``SESSION_COLUMNS``; a sequence x item read in one session only has none (NaN, said in ``note``)."""
    if session and "session" not in scores.columns:
        raise ValueError("scores: the session effect needs a session column (the long export has one)")
    rows = []
    for (sequence, item), block in scores.groupby(["sequence", "item"], sort=False):
        if block["version"].nunique() < 2:
            fit = unfitted(
                ["version_dl"],
                "only one version scored: the version effect is not identifiable",
                len(block),
                block["patient_id"].nunique(),
                block["site"].nunique(),
            )
        else:
            fit = fit_item(block, gradient, session=session)
        extra = ()
        if session:
            fitted = SESSION_TERM in fit.coef
            extra = (fit.coef[SESSION_TERM], fit.se[SESSION_TERM], fit.p(SESSION_TERM)) if fitted else (math.nan,) * 3
            if not fitted and block["session"].nunique() < 2:
                fit = replace(fit, note="; ".join(filter(None, [fit.note, "read in one session: no session effect"])))
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
                fit.note,
                *extra,
            )
        )
    return pd.DataFrame(rows, columns=[*CLMM_COLUMNS, "n", "converged", "note", *(SESSION_COLUMNS if session else [])])
