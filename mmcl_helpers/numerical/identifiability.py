"""Numerical companions to the identifiability proof (Theorem 4.1 of Cai et al., 2025, App. B).

The proof works with the asymptotic loss of Eq. (2),

    L(f_x, f_t) = E||f_x(x) - f_t(t)||^2 - (H(f_x(x)) + H(f_t(t))) / 2,

for encoders into the open cube (0, 1)^n. This module provides what it takes to evaluate every
step of the proof on samples (chapter 4 of the book uses it):

- :func:`knn_entropy`: the Kozachenko-Leonenko k-nearest-neighbour estimate of differential
  entropy, :func:`cube_entropy` its variant for codes in (0, 1)^n, and :func:`gaussian_entropy`
  as a closed-form reference;
- :func:`darmois_gaussian`: the Darmois construction (conditional CDFs) for Gaussian latents,
  which maps them onto the uniform distribution on (0, 1)^n (Lemma B.1);
- :func:`estimate_eq2`: a sample estimate of Eq. (2), split into alignment and the two entropies;
- :class:`OracleEncoders`: the minimiser of Lemma B.1, ``d o (g^-1 restricted to the unbiased
  block)``, and :meth:`OracleEncoders.contaminated_codes`, the same encoders with a fraction of an
  excluded variable (m_x, m_t, an omitted or a perturbed semantic) mixed in (Steps 2-4);
- :func:`contamination_sweep`: Eq. (2) as a growing fraction of each excluded variable is mixed in;
- :func:`fold`, :func:`kernel_entropy` and :func:`fit_decoder`: a non-injective map (Step 5), the
  entropy hidden in the uniformity term of Eq. (1), and a decoder used to read a trained encoder
  on the oracle's coordinates; :func:`chunked_info_nce_terms` computes InfoNCE's two terms on
  tens of thousands of samples without ever holding the (N, N) similarity matrix.

Arrays are NumPy float64 of shape (N, n) unless stated otherwise; torch tensors are accepted as
inputs wherever samples are expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln
from scipy.stats import norm

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.losses import info_nce_terms, similarity_matrix
from mmcl_helpers.numerical.latents import gaussian_conditional
from mmcl_helpers.numerical.probes import fit_mlp
from mmcl_helpers.numerical.simulation import MultimodalSimulation, PairBatch

__all__ = [
    "CONTAMINANTS",
    "Eq2Estimate",
    "OracleEncoders",
    "knn_entropy",
    "cube_entropy",
    "gaussian_entropy",
    "darmois_gaussian",
    "estimate_eq2",
    "mixed_code_alignment",
    "fold",
    "kernel_entropy",
    "chunked_info_nce_terms",
    "fit_decoder",
    "contamination_sweep",
]

#: Variables an encoder may wrongly read, with the proof step that excludes each.
CONTAMINANTS: dict[str, str] = {
    "mx": "Step 2: image-specific m_x",
    "mt": "Step 2: text-specific m_t",
    "omitted": "Step 3: an omitted semantic",
    "perturbed": "Step 4: a perturbed semantic",
}


def _as_array(z: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().double().numpy()
    z = np.asarray(z, dtype=np.float64)
    return z[:, None] if z.ndim == 1 else z


def knn_entropy(z: np.ndarray | torch.Tensor, k: int = 3) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy (in nats) of samples ``z``.

    ``H ~ psi(N) - psi(k) + log V_n + (n / N) sum_i log r_i``, where r_i is the Euclidean distance
    from sample i to its k-th nearest neighbour and V_n the volume of the unit n-ball.

    Args:
        z: samples, shape (N, n) (or (N,) for n = 1).
        k: which neighbour to use; larger k lowers the variance and raises the bias.

    Returns:
        the entropy estimate, a float.

    Raises:
        ValueError: fewer than k + 1 samples, or repeated samples (zero distances).
    """
    val.check_params("knn_entropy", k=(k, val.POSITIVE_INT))
    z = _as_array(z)
    n_samples, dim = z.shape
    if not 1 <= k < n_samples:
        raise ValueError(f"k must lie in 1..N-1 = 1..{n_samples - 1}, got {k!r}.")
    dist, _ = cKDTree(z).query(z, k=k + 1)
    r = dist[:, -1]
    if np.any(r <= 0):
        raise ValueError(
            f"{int(np.sum(r <= 0))} samples have a k-th neighbour at distance 0 (repeated points): "
            "the estimator needs a continuous distribution."
        )
    log_unit_ball = 0.5 * dim * math.log(math.pi) - gammaln(0.5 * dim + 1.0)
    return float(digamma(n_samples) - digamma(k) + log_unit_ball + dim * np.mean(np.log(r)))


def cube_entropy(z: np.ndarray | torch.Tensor, k: int = 3) -> float:
    """Entropy of samples in the open cube (0, 1)^n, estimated in probit coordinates.

    Near the faces of the cube the k-NN estimator overestimates the entropy (points there have
    fewer neighbours). Mapping each coordinate through the standard normal quantile function
    w = Phi^-1(z) removes the faces, and the change-of-variables formula gives the entropy back:
    ``H(z) = H(w) + E sum_i log phi(w_i)``, with H(w) from :func:`knn_entropy`.

    Args:
        z: samples in (0, 1)^n, shape (N, n) (values are clipped 1e-15 away from 0 and 1).
        k: neighbour order of the k-NN estimator.

    Returns:
        the entropy estimate, a float.
    """
    z = _as_array(z)
    if np.any((z < 0) | (z > 1)):
        raise ValueError("cube_entropy needs samples in (0, 1)^n; some lie outside.")
    w = norm.ppf(np.clip(z, 1e-15, 1.0 - 1e-15))
    return knn_entropy(w, k) + float(np.mean(np.sum(norm.logpdf(w), axis=1)))


def gaussian_entropy(cov: np.ndarray) -> float:
    """Closed-form entropy of N(mu, cov): ``0.5 * log det(2 pi e cov)`` (cov shape (n, n))."""
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    _, logdet = np.linalg.slogdet(2.0 * math.pi * math.e * cov)
    return float(0.5 * logdet)


def darmois_gaussian(s: np.ndarray | torch.Tensor, cov: np.ndarray) -> np.ndarray:
    """Darmois construction d for zero-mean Gaussian latents (Lemma B.1).

    ``d_i(s) = P(S_i <= s_i | s_1..s_{i-1}) = Phi((s_i - beta_i @ s_<i) / sd_i)``, with the
    conditional mean and variance of :func:`gaussian_conditional`. The standardised residuals are
    the entries of ``L^-1 s`` for the Cholesky factor ``cov = L L^T``, so d(s) = Phi(L^-1 s); the
    output is uniform on (0, 1)^n.

    Args:
        s: samples of N(0, cov), shape (N, n).
        cov: their covariance, shape (n, n).

    Returns:
        codes in (0, 1)^n, shape (N, n).
    """
    s = _as_array(s)
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if cov.shape != (s.shape[1], s.shape[1]):
        raise ValueError(f"cov has shape {cov.shape}, expected ({s.shape[1]}, {s.shape[1]}).")
    residual = np.empty_like(s)
    for i in range(s.shape[1]):
        beta, var = gaussian_conditional(cov, i)
        residual[:, i] = (s[:, i] - s[:, :i] @ beta) / math.sqrt(var)
    return norm.cdf(residual)


@dataclass(frozen=True)
class Eq2Estimate:
    """A sample estimate of Eq. (2): ``loss = alignment - (entropy_x + entropy_t) / 2``."""

    loss: float
    alignment: float
    entropy_x: float
    entropy_t: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def estimate_eq2(
    z_x: np.ndarray | torch.Tensor,
    z_t: np.ndarray | torch.Tensor,
    k: int = 3,
    estimator: str = "cube",
) -> Eq2Estimate:
    """Estimate Eq. (2) from matched codes ``z_x``, ``z_t`` (each (N, n); row i from pair i).

    Alignment is the sample mean of ``||z_x - z_t||^2``; each entropy is :func:`cube_entropy`
    (``estimator="cube"``, for codes in (0, 1)^n) or the plain :func:`knn_entropy` (``"knn"``).
    """
    a, b = _as_array(z_x), _as_array(z_t)
    if a.shape != b.shape:
        raise ValueError(f"z_x and z_t must have the same shape, got {a.shape} and {b.shape}.")
    entropy = {"cube": cube_entropy, "knn": knn_entropy}.get(estimator)
    if entropy is None:
        raise ValueError(f"estimator must be 'cube' or 'knn', got {estimator!r}.")
    alignment = float(np.mean(np.sum((a - b) ** 2, axis=1)))
    h_x, h_t = entropy(a, k), entropy(b, k)
    return Eq2Estimate(alignment - 0.5 * (h_x + h_t), alignment, h_x, h_t)


def mixed_code_alignment(lam: float | np.ndarray) -> float | np.ndarray:
    """Exact E(Phi(X) - Phi(Y))^2 for standard normals with correlation sqrt(1 - lam).

    This is the alignment cost of one code coordinate into which a fraction ``lam`` of the
    variance comes from a variable the other modality cannot see (independent of everything it
    does see): ``1/6 - arcsin(sqrt(1 - lam) / 2) / pi``. It is 0 at lam = 0 and 1/6 at lam = 1.
    """
    rho = np.sqrt(1.0 - np.asarray(lam, dtype=np.float64))
    out = 1.0 / 6.0 - np.arcsin(rho / 2.0) / math.pi
    return float(out) if out.ndim == 0 else out


def fold(u: np.ndarray) -> np.ndarray:
    """The smooth two-to-one map ``u -> 4 u (1 - u)`` of (0, 1) onto itself (Step 5's example).

    Applied to a uniform coordinate u it gives Beta(1, 1/2) (``1 - fold(u)`` is the square of a
    uniform), whose entropy is ``log 2 - 1`` (about -0.31 nats), below the uniform's 0.
    """
    return 4.0 * u * (1.0 - u)


def kernel_entropy(
    z_x: np.ndarray | torch.Tensor, z_t: np.ndarray | torch.Tensor, tau: float
) -> float:
    """The entropy estimate hidden in the uniformity term of Eq. (1).

    With similarity ``-||a - b||^2`` and temperature tau, the log-sum-exp part of InfoNCE over a
    batch of B pairs is ``log B + (n/2) log(pi tau) + log p_tau(z)`` on average, where p_tau is a
    Gaussian-kernel density estimate (kernel variance tau/2). Hence
    ``-(uniformity - log B - (n/2) log(pi tau))`` estimates the entropy, and tends to it as B grows
    and tau shrinks.

    Args:
        z_x, z_t: matched codes, shape (B, n).
        tau: temperature.

    Returns:
        the entropy estimate, a float.
    """
    a, b = _as_array(z_x), _as_array(z_t)
    _, uniformity = chunked_info_nce_terms(a, b, "euclidean", tau)
    batch, dim = a.shape
    return float(-(uniformity - math.log(batch) - 0.5 * dim * math.log(math.pi * tau)))


def chunked_info_nce_terms(
    z_x: np.ndarray | torch.Tensor,
    z_t: np.ndarray | torch.Tensor,
    similarity: str = "euclidean",
    tau: float = 0.1,
    chunk: int = 1024,
) -> tuple[float, float]:
    """:func:`~mmcl_helpers.core.losses.info_nce_terms` of one batch, in float64, ``chunk`` rows at a time.

    The (N, N) similarity matrix of N = 20,000 samples takes 3.2 GB in float64 and its
    log-sum-exp as much again; here only (N, chunk) blocks exist (164 MB at the default), so the
    peak memory no longer grows with N squared. The value is the same up to rounding.

    Args:
        z_x, z_t: matched codes, shape (N, n) (NumPy or torch; computed in float64 on the CPU).
        similarity, tau: as in :func:`~mmcl_helpers.core.losses.info_nce_terms`.
        chunk: rows (and then columns) of the similarity matrix formed at a time.

    Returns:
        ``(alignment, uniformity)`` as floats.
    """
    if int(chunk) < 1:
        raise ValueError(f"chunk must be a positive number of rows, got {chunk!r}.")
    a = torch.as_tensor(_as_array(z_x))
    b = torch.as_tensor(_as_array(z_t))
    if a.shape != b.shape:
        raise ValueError(f"z_x and z_t must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}.")
    info_nce_terms(a[:1], b[:1], similarity, tau)  # checks similarity and tau
    if similarity == "cosine":
        a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
        alignment = float(-(a * b).sum(-1).mean() / tau)
    else:
        alignment = float((a - b).pow(2).sum(-1).mean() / tau)
    n = len(a)
    row = torch.empty(n, dtype=torch.float64)
    col = torch.empty(n, dtype=torch.float64)
    for lo in range(0, n, int(chunk)):
        hi = min(n, lo + int(chunk))
        row[lo:hi] = torch.logsumexp(similarity_matrix(a[lo:hi], b, similarity) / tau, dim=-1)
        col[lo:hi] = torch.logsumexp(similarity_matrix(a, b[lo:hi], similarity) / tau, dim=0)
    return alignment, float(0.5 * (row.mean() + col.mean()))


def fit_decoder(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    steps: int,
    hidden: tuple[int, ...] = (64, 64),
    lr: float = 3e-3,
    batch_size: int = 1024,
    seed: int = 0,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Fit an MLP regressor from representations to targets and return it as a function.

    Inputs are standardised with the training statistics, targets likewise (and mapped back).

    Args:
        z_train: representations, shape (N, K).
        y_train: targets, shape (N, D).
        steps, hidden, lr, batch_size, seed: MLP training (as in :mod:`mmcl_helpers.numerical.probes`).

    Returns:
        a function (M, K) -> (M, D) on the device of ``z_train``.
    """
    z_train = z_train.float()
    y_train = y_train.float().to(z_train.device)
    z_mean, z_scale = z_train.mean(0), z_train.std(0) + 1e-8
    z_std = (z_train - z_mean) / z_scale
    y_mean, y_scale = y_train.mean(0), y_train.std(0) + 1e-8
    y_std = (y_train - y_mean) / y_scale
    net = fit_mlp(
        z_std[None], y_std[None], lambda p, y: (p - y).pow(2).mean(), y_train.shape[1],
        hidden, steps, lr, batch_size, seed,
    )

    @torch.no_grad()
    def decode(z: torch.Tensor) -> torch.Tensor:
        z = (z.float().to(z_mean.device) - z_mean) / z_scale
        return net(z[None])[0] * y_scale + y_mean

    return decode


class OracleEncoders:
    """The minimiser of Lemma B.1 for one bias setting of a simulation, and its contaminations.

    ``f*_x = d o (g_x^-1 restricted to the unbiased semantics)`` and the same for f*_t, with d the
    Gaussian Darmois construction for the unbiased block's covariance. Both map into (0, 1)^n,
    n = number of unbiased semantics, and agree on every pair because captions copy the unbiased
    semantics exactly.

    Args:
        sim: the simulation (its mixing functions are inverted exactly).
        setting: index of the bias setting in ``sim.biases``.
    """

    def __init__(self, sim: MultimodalSimulation, setting: int = 0) -> None:
        self.sim, self.setting = sim, int(setting)
        self.bias: CaptionBias = sim.biases[self.setting]
        self.unbiased = [i - 1 for i in self.bias.unbiased]  # 0-based
        self.selected = [i - 1 for i in sorted(self.bias.selected)]
        cov = np.asarray(sim.model.cov_s, dtype=np.float64)
        self.cov_unbiased = cov[np.ix_(self.unbiased, self.unbiased)]
        self._chol = cholesky(self.cov_unbiased, lower=True)
        self._cov_s = cov

    @property
    def n(self) -> int:
        """Encoding size, the number of unbiased semantics."""
        return len(self.unbiased)

    def image_latents(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``g_x^-1``: images (N, n_s + n_image) -> ``(s (N, n_s), m_x (N, n_image))``."""
        z = _as_array(self.sim.g_x.inverse(x.to(self.sim.g_x.weights.device)))
        n_s = self.sim.model.n_semantic
        return z[:, :n_s], z[:, n_s:]

    def text_latents(self, t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``g_t^-1`` of this setting: captions (N, ·) -> ``(s~ (N, n_s), m_t (N, n_text))``.

        Entries of s~ that the caption does not select are NaN.
        """
        g_t = self.sim.g_t[self.setting]
        width = self.sim.t_dims[self.setting]
        z = _as_array(g_t.inverse(t[..., :width].to(g_t.weights.device)))
        k = len(self.selected)
        s_tilde = np.full((z.shape[0], self.sim.model.n_semantic), np.nan)
        s_tilde[:, self.selected] = z[:, :k]
        return s_tilde, z[:, k:]

    def _white(self, s: np.ndarray) -> np.ndarray:
        # Standardised conditional residuals of the unbiased block: L^-1 s_U, shape (N, n).
        return solve_triangular(self._chol, s[:, self.unbiased].T, lower=True).T

    def residual(self, s: np.ndarray, factor: int) -> np.ndarray:
        """Standardised part of semantic ``factor`` (1-based) not predictable from s_U, shape (N,).

        Independent of the unbiased block, standard normal under the model.
        """
        j = factor - 1
        u = self.unbiased
        beta = cho_solve((self._chol, True), self._cov_s[u, j])
        var = self._cov_s[j, j] - self._cov_s[j, u] @ beta
        return (s[:, j] - s[:, u] @ beta) / math.sqrt(var)

    def codes(self, batch: PairBatch) -> tuple[np.ndarray, np.ndarray]:
        """Oracle codes ``(f*_x(x), f*_t(t))`` of a batch, each (N, n), computed from x and t only."""
        s, _ = self.image_latents(batch.x)
        s_tilde, _ = self.text_latents(batch.t[self.setting])
        return norm.cdf(self._white(s)), norm.cdf(self._white(s_tilde))

    def contaminated_codes(
        self, batch: PairBatch, source: str, lam: float, factor: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Oracle codes with a fraction ``lam`` of an excluded variable mixed into coordinate 1.

        Coordinate 1 becomes ``Phi(sqrt(1 - lam) w_1 + sqrt(lam) c)``, where w_1 is the oracle's
        standardised residual and c a standardised variable the theorem says must be ignored. The
        variance is kept, so the codes stay exactly uniform whenever c is independent of s_U: any
        loss increase is then paid by the alignment term alone.

        Args:
            batch: pairs from the simulation (this setting's captions are used).
            source: ``"mx"`` (image encoder reads m_x), ``"mt"`` (text encoder reads m_t),
                ``"omitted"`` (image encoder reads an omitted semantic) or ``"perturbed"`` (both
                encoders read a perturbable semantic, each from its own modality).
            lam: fraction in [0, 1]; 0 gives the oracle.
            factor: 1-based semantic for ``"omitted"``/``"perturbed"`` (default: the smallest one).

        Returns:
            ``(z_x, z_t)``, each (N, n).
        """
        if source not in CONTAMINANTS:
            raise ValueError(f"source must be one of {list(CONTAMINANTS)}, got {source!r}.")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must lie in [0, 1], got {lam!r}.")
        s, m_x = self.image_latents(batch.x)
        s_tilde, m_t = self.text_latents(batch.t[self.setting])
        w_x, w_t = self._white(s), self._white(s_tilde)
        c_x = c_t = None
        if source == "mx":
            c_x = m_x[:, 0] / math.sqrt(self.sim.model.cov_mx[0, 0])
        elif source == "mt":
            c_t = m_t[:, 0] / math.sqrt(self.sim.model.cov_mt[0, 0])
        else:
            pool = sorted(set(range(1, self.sim.model.n_semantic + 1)) - self.bias.selected)
            if source == "perturbed":
                pool = sorted(self.bias.perturbed)
            if not pool:
                raise ValueError(f"setting {self.bias.label} has no {source} semantic.")
            factor = pool[0] if factor is None else factor
            if factor not in pool:
                raise ValueError(f"s{factor} is not {source} in setting {self.bias.label}.")
            c_x = self.residual(s, factor)
            if source == "perturbed":
                c_t = self.residual(s_tilde, factor)
        a, b = math.sqrt(1.0 - lam), math.sqrt(lam)
        if c_x is not None:
            w_x[:, 0] = a * w_x[:, 0] + b * c_x
        if c_t is not None:
            w_t[:, 0] = a * w_t[:, 0] + b * c_t
        return norm.cdf(w_x), norm.cdf(w_t)


def contamination_sweep(
    oracle: OracleEncoders,
    batch: PairBatch,
    lams: np.ndarray | list[float],
    sources: list[str] | None = None,
) -> pd.DataFrame:
    """Eq. (2) of :meth:`OracleEncoders.contaminated_codes` for every source and fraction.

    Args:
        oracle: the oracle encoders of one setting.
        batch: evaluation pairs.
        lams: mixing fractions in [0, 1].
        sources: keys of :data:`CONTAMINANTS` (default: all).

    Returns:
        a tidy table with columns source, step, lam, loss, alignment, entropy_x, entropy_t, entropy
        (the mean of the two) and gap (loss minus the oracle's loss on the same batch).
    """
    best = estimate_eq2(*oracle.codes(batch)).loss
    rows = []
    for source in sources or list(CONTAMINANTS):
        for lam in lams:
            est = estimate_eq2(*oracle.contaminated_codes(batch, source, float(lam)))
            rows.append({"source": source, "step": CONTAMINANTS[source].split(":")[0],
                         "lam": float(lam), **est.as_dict()})
    out = pd.DataFrame(rows)
    out["entropy"] = 0.5 * (out["entropy_x"] + out["entropy_t"])
    out["gap"] = out["loss"] - best
    return out
