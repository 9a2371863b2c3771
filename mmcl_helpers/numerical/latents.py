"""The latent variable model of the paper's numerical study (Cai et al., 2025, §3 and App. C).

Three independent Gaussian blocks: semantics ``s`` (shared by image and caption), image-specific
``m_x`` and text-specific ``m_t``. Semantics are independent (covariance I) or dependent (a
covariance drawn from a Wishart distribution with ``n_semantic`` degrees of freedom). The caption
sees the selected semantics, some of them perturbed by additive Gaussian noise (:func:`perturb`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import wishart

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.timing import timed

__all__ = ["MAX_LATENT_SIZE", "Latents", "LatentModel", "gaussian_conditional", "perturb", "intervene"]


@dataclass
class Latents:
    """A batch of latents.

    Attributes:
        s: semantics, shape (N, n_semantic).
        m_x: image-specific factors, shape (N, n_image).
        m_t: text-specific factors, shape (N, n_text).
    """

    s: torch.Tensor
    m_x: torch.Tensor
    m_t: torch.Tensor

    def factors(self) -> dict[str, torch.Tensor]:
        """Every factor by its book name: ``s1..sN`` (shape (N, 1)), ``mx`` and ``mt`` (blocks)."""
        out = {f"s{i + 1}": self.s[:, i : i + 1] for i in range(self.s.shape[1])}
        out["mx"] = self.m_x
        out["mt"] = self.m_t
        return out

    def to_frame(self) -> pd.DataFrame:
        """One column per coordinate: ``s1..sN``, ``mx1..``, ``mt1..``."""
        cols = {f"s{i + 1}": self.s[:, i] for i in range(self.s.shape[1])}
        cols |= {f"mx{i + 1}": self.m_x[:, i] for i in range(self.m_x.shape[1])}
        cols |= {f"mt{i + 1}": self.m_t[:, i] for i in range(self.m_t.shape[1])}
        return pd.DataFrame({k: v.detach().cpu().numpy() for k, v in cols.items()})


#: The largest block size :class:`LatentModel` accepts. Each block has a dense ``n x n`` covariance
#: (float64) drawn from a Wishart distribution, an O(n^3) draw: 4096 is 128 MiB per matrix, while
#: 10**6 would ask for 7 TiB; the paper uses 10 semantics and 5 modality-specific factors.
MAX_LATENT_SIZE = 4096
_SIZE = val.Interval(val.Integral, 1, MAX_LATENT_SIZE, closed="both")


def _cholesky(cov: np.ndarray) -> torch.Tensor:
    return torch.linalg.cholesky(torch.as_tensor(cov, dtype=torch.float64)).float()


class LatentModel:
    """Covariances of s, m_x, m_t and of the perturbation noise, drawn once from ``seed``.

    Args:
        n_semantic: number of semantic factors n_s (paper: 10).
        n_image: size of m_x (paper: 5).
        n_text: size of m_t (paper: 5).
        dependent: draw the semantic covariance from Wishart(df=n_semantic, I) instead of using I.
        seed: seeds every covariance draw.

    Raises:
        InvalidParameterError: a size outside 1 to :data:`MAX_LATENT_SIZE` (checked before anything
            is allocated), a negative seed.

    The image- and text-specific covariances come from Wishart(df=size, I) and the perturbation
    noise covariance from Wishart(df=n_semantic, I), as in App. C of the paper.
    """

    def __init__(
        self,
        n_semantic: int = 10,
        n_image: int = 5,
        n_text: int = 5,
        dependent: bool = False,
        seed: int = 0,
    ) -> None:
        ok = val.check_params("LatentModel", n_semantic=(n_semantic, _SIZE), n_image=(n_image, _SIZE),
                              n_text=(n_text, _SIZE),
                              dependent=(dependent, val.BOOLEAN), seed=(seed, val.NONNEG_INT))
        n_semantic, n_image, n_text, seed = ok["n_semantic"], ok["n_image"], ok["n_text"], ok["seed"]
        self.n_semantic, self.n_image, self.n_text = n_semantic, n_image, n_text
        self.dependent = bool(dependent)
        self.seed = int(seed)
        rng = np.random.default_rng(seed)

        def draw(df: int, dim: int) -> np.ndarray:
            return np.atleast_2d(wishart(df=df, scale=np.eye(dim)).rvs(random_state=rng))

        self.cov_s = draw(n_semantic, n_semantic) if dependent else np.eye(n_semantic)
        self.cov_mx = draw(n_image, n_image)
        self.cov_mt = draw(n_text, n_text)
        self.cov_eps = draw(n_semantic, n_semantic)
        self._chol = {k: _cholesky(v) for k, v in self.covariances().items()}
        # One copy of the factors per device, made on first use: sampling on a GPU then never
        # copies a matrix from the host (issue 16; it used to copy one per call).
        self._chol_on: dict[torch.device, dict[str, torch.Tensor]] = {}

    def covariances(self) -> dict[str, np.ndarray]:
        """The four covariance matrices, keyed ``s``, ``m_x``, ``m_t``, ``eps``."""
        return {"s": self.cov_s, "m_x": self.cov_mx, "m_t": self.cov_mt, "eps": self.cov_eps}

    def explained_r2(self, target: int, given: Iterable[int]) -> float:
        """R^2 of the best prediction of semantic ``target`` from the semantics ``given``.

        The semantics are jointly Gaussian, so the best predictor of ``s_target`` from any function
        of ``s_given`` is the linear regression on ``s_given``, and its R^2 is
        ``Sigma[t, g] Sigma[g, g]^-1 Sigma[g, t] / Sigma[t, t]``. An encoder that keeps exactly
        the unbiased block (Theorem 4.1) therefore predicts an omitted or perturbed factor with
        this R^2: 0 for independent semantics, partial for dependent ones.

        Args:
            target: 1-based index of the factor to predict.
            given: 1-based indices of the factors the representation holds (may be empty).

        Returns:
            a number in [0, 1] (1 when ``target`` is among ``given``).
        """
        n = self.n_semantic
        g = sorted({int(i) for i in given})
        bad = [i for i in [int(target), *g] if not 1 <= i <= n]
        if bad:
            raise ValueError(f"semantic indices must lie in 1..{n}; got {bad}.")
        if target in g:
            return 1.0
        if not g:
            return 0.0
        order = [i - 1 for i in g] + [int(target) - 1]
        _, residual = gaussian_conditional(self.cov_s[np.ix_(order, order)], len(g))
        # Guard against round-off only: the exact value lies in [0, 1].
        return min(1.0, max(0.0, 1.0 - residual / float(self.cov_s[order[-1], order[-1]])))

    def cholesky_on(self, device: torch.device | str) -> dict[str, torch.Tensor]:
        """The four Cholesky factors (keyed as :meth:`covariances`) on ``device``, copied once."""
        device = torch.device(device)
        if device not in self._chol_on:
            self._chol_on[device] = {k: c.to(device) for k, c in self._chol.items()}
        return self._chol_on[device]

    def _gaussian(self, key: str, n: int, generator: torch.Generator) -> torch.Tensor:
        device = generator.device
        chol = self.cholesky_on(device)[key]
        return torch.randn(n, chol.shape[0], generator=generator, device=device) @ chol.T

    @timed("data")
    def sample(self, n: int, generator: torch.Generator) -> Latents:
        """Draw ``n`` independent latent triples on the generator's device."""
        return Latents(
            s=self._gaussian("s", n, generator),
            m_x=self._gaussian("m_x", n, generator),
            m_t=self._gaussian("m_t", n, generator),
        )

    def noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Perturbation noise eps ~ N(0, Sigma_eps), shape (n, n_semantic)."""
        return self._gaussian("eps", n, generator)

    def __repr__(self) -> str:
        kind = "dependent" if self.dependent else "independent"
        return (
            f"LatentModel(n_semantic={self.n_semantic}, n_image={self.n_image}, "
            f"n_text={self.n_text}, {kind}, seed={self.seed})"
        )


def gaussian_conditional(cov: np.ndarray, i: int) -> tuple[np.ndarray, float]:
    """Regression form of the Gaussian conditional of coordinate ``i`` given coordinates ``< i``.

    For s ~ N(0, cov): ``s_i | s_<i ~ N(beta @ s_<i, var)``.

    Args:
        cov: covariance, shape (n, n).
        i: 0-based coordinate.

    Returns:
        ``(beta, var)``: regression weights, shape (i,), and conditional variance.
    """
    cov = np.asarray(cov, dtype=np.float64)
    if i == 0:
        return np.zeros(0), float(cov[0, 0])
    prev = cov[:i, :i]
    beta = np.linalg.solve(prev, cov[:i, i])
    return beta, float(cov[i, i] - cov[i, :i] @ beta)


def perturb(
    s: torch.Tensor,
    bias: CaptionBias,
    model: LatentModel,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Semantics as a caption reports them.

    Each perturbable factor (``bias.perturbed``) is changed independently with probability
    ``bias.p_perturb`` by adding Gaussian noise; every other factor is copied exactly. This is a
    change of words, not an intervention: nothing downstream of a perturbed factor moves.

    Args:
        s: semantics, shape (N, n_semantic).

    Returns:
        ``(s_tilde, changed)``: reported semantics, shape (N, n_semantic), and a boolean mask of
        the entries that were changed, same shape.
    """
    n = s.shape[0]
    changed = torch.zeros(s.shape, dtype=torch.bool, device=s.device)
    idx = [i - 1 for i in sorted(bias.perturbed)]
    # Draw the noise even when nothing is perturbed, so that the random stream (and hence every
    # later draw) does not depend on the bias setting.
    eps = model.noise(n, generator)
    coin = torch.rand(s.shape, generator=generator, device=generator.device) < bias.p_perturb
    if idx:
        changed[:, idx] = coin[:, idx]
    s_tilde = torch.where(changed, s + eps, s)
    return s_tilde, changed


def intervene(s: torch.Tensor, model: LatentModel, index: int, values: torch.Tensor) -> torch.Tensor:
    """Semantics after the intervention do(s_index := values), for contrast with :func:`perturb`.

    The Gaussian semantics are read as a linear structural causal model in the order s1 -> s2 ->
    ... -> sN (the Cholesky factor of their covariance): each s_j is a linear function of
    s_1..s_{j-1} plus its own noise. An intervention fixes s_index and recomputes every later factor
    from its equation with the same noise, so the effect travels to causal descendants. (A caption
    perturbation changes the reported value only.)

    Args:
        s: semantics, shape (N, n_semantic).
        index: 1-based factor to intervene on.
        values: new values of that factor, shape (N,).

    Returns:
        intervened semantics, shape (N, n_semantic).
    """
    if not 1 <= index <= model.n_semantic:
        raise ValueError(f"index must lie in 1..{model.n_semantic}, got {index!r}.")
    a = torch.linalg.inv(model.cholesky_on(s.device)["s"].double())  # lower triangular: u = A s
    u = s.double() @ a.T
    out = s.double().clone()
    i = index - 1
    out[:, i] = values.double()
    for j in range(i + 1, model.n_semantic):
        out[:, j] = (u[:, j] - out[:, :j] @ a[j, :j]) / a[j, j]
    return out.to(s.dtype)
