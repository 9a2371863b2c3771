"""Contrastive losses: symmetric InfoNCE (the paper's Eq. 1) and its alignment/entropy split.

Every function accepts representations with any number of leading dimensions, ``(..., B, K)``,
so that several models trained side by side (an ensemble dimension first) get one loss each.

With similarity ``-||a - b||^2`` and temperature 1, InfoNCE splits exactly into an *alignment*
term, the mean squared distance between matched pairs, plus a log-sum-exp term that is (up to a
constant) a kernel estimate of the negative entropy of the representation. As the batch grows
this is the asymptotic loss of Eq. (2): ``E||f_x(x) - f_t(t)||^2 - (H(f_x(x)) + H(f_t(t)))/2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SIMILARITIES", "similarity_matrix", "info_nce", "info_nce_terms", "text_uniformity"]

SIMILARITIES = ("cosine", "euclidean")


def _check(similarity: str, tau: float) -> None:
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}.")
    if not tau > 0:
        raise ValueError(f"temperature tau must be positive, got {tau!r}.")


def _check_pair(z_x: torch.Tensor, z_t: torch.Tensor) -> None:
    if z_x.shape != z_t.shape or z_x.dim() < 2 or z_x.shape[-2] < 1:
        raise ValueError(
            "z_x and z_t must be matched representations of the same shape (..., B, K) with a "
            f"batch of B >= 1 pairs; got shapes {tuple(z_x.shape)} and {tuple(z_t.shape)}."
        )


def similarity_matrix(a: torch.Tensor, b: torch.Tensor, similarity: str = "cosine") -> torch.Tensor:
    """Pairwise similarities.

    Args:
        a, b: shape (..., B, K).
        similarity: ``"cosine"`` or ``"euclidean"`` (negative squared distance, computed with a
            matrix product so no (B, B, K) tensor is ever formed).

    Returns:
        shape (..., B, B); entry [i, j] compares a_i with b_j.
    """
    _check(similarity, 1.0)
    if similarity == "cosine":
        return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(-1, -2)
    sq_a = a.pow(2).sum(-1, keepdim=True)
    sq_b = b.pow(2).sum(-1, keepdim=True).transpose(-1, -2)
    return -(sq_a + sq_b - 2.0 * a @ b.transpose(-1, -2)).clamp_min(0.0)


def info_nce_terms(
    z_x: torch.Tensor,
    z_t: torch.Tensor,
    similarity: str = "cosine",
    tau: float = 0.1,
    exclude: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Alignment and uniformity (negative-entropy) parts of symmetric InfoNCE.

    Args:
        z_x, z_t: matched representations, shape (..., B, K); row i of each comes from pair i.
        exclude: optional bool mask, shape (B, B): ``True`` at [i, j] leaves t_j out of x_i's
            negatives and x_i out of t_j's (e.g. captions that state the same thing, which the
            loss would otherwise push apart); the diagonal must be ``False``.

    Returns:
        ``(alignment, uniformity)``, each shape (...): ``-mean_i sim(x_i, t_i) / tau`` and the
        mean over both directions of ``logsumexp_j sim / tau``. Their sum is :func:`info_nce`.
    """
    _check(similarity, tau)
    _check_pair(z_x, z_t)
    n = z_x.shape[-2]
    if exclude is not None:
        if exclude.shape != (n, n) or exclude.dtype != torch.bool:
            raise ValueError(f"exclude must be a bool mask of shape ({n}, {n}); got "
                             f"{exclude.dtype} of shape {tuple(exclude.shape)}.")
        if bool(exclude.diagonal().any()):
            raise ValueError("exclude must be False on its diagonal: a pair is never its own negative.")
    if similarity == "cosine":
        # Scale the (.., B, K) factors rather than the (.., B, B) matrix, and read the matched
        # similarities off the vectors: on a CPU the B x B element-wise work dominates a step.
        a = F.normalize(z_x, dim=-1) / tau
        b = F.normalize(z_t, dim=-1)
        logits = a @ b.transpose(-1, -2)
        alignment = -(a * b).sum(-1).mean(-1)
        bound = 1.0 / tau
        if bound <= 30.0:
            # Cosine logits lie in [-1/tau, 1/tau]: one shared shift keeps exp in range, so a
            # single exp serves both directions (logsumexp would compute two).
            p = torch.exp(logits - bound)
            if exclude is not None:
                p = p.masked_fill(exclude, 0.0)
            row = torch.log(p.sum(-1)) + bound
            col = torch.log(p.sum(-2)) + bound
            return alignment, 0.5 * (row.mean(-1) + col.mean(-1))
    else:
        logits = similarity_matrix(z_x, z_t, similarity) / tau
        alignment = (z_x - z_t).pow(2).sum(-1).mean(-1) / tau
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))
    uniformity = 0.5 * (
        torch.logsumexp(logits, dim=-1).mean(-1) + torch.logsumexp(logits, dim=-2).mean(-1)
    )
    return alignment, uniformity


def info_nce(
    z_x: torch.Tensor,
    z_t: torch.Tensor,
    similarity: str = "cosine",
    tau: float = 0.1,
    exclude: torch.Tensor | None = None,
    align_weight: float = 1.0,
) -> torch.Tensor:
    """Symmetric InfoNCE, Eq. (1): the mean of the image->text and text->image cross-entropies.

    Args:
        z_x, z_t: matched representations, shape (..., B, K).
        similarity: ``"cosine"`` or ``"euclidean"``.
        tau: temperature.
        exclude: negatives to leave out, as in :func:`info_nce_terms`.
        align_weight: weight ``w`` of the alignment part (1, the default, is Eq. 1). The loss is
            then Eq. 1 plus ``(w - 1)`` times the misalignment of the matched pairs, which is
            >= 0 and 0 only when every pair is aligned: ``mean(1 - cos(x_i, t_i)) / tau`` for
            cosine similarity, the alignment part itself for the Euclidean form. It keeps
            pulling matched pairs together after the negatives have become easy, when InfoNCE's
            own pull has faded; where perfect alignment is attainable (as at the minimisers of
            Eq. 2 in Theorem 4.1) it leaves the set of minimisers unchanged.

    Returns:
        loss per leading index, shape (...); a scalar for plain (B, K) inputs.
    """
    if isinstance(align_weight, bool) or not (isinstance(align_weight, (int, float)) and align_weight >= 0):
        raise ValueError(f"align_weight must be a number >= 0, got {align_weight!r}.")
    alignment, uniformity = info_nce_terms(z_x, z_t, similarity, tau, exclude)
    if align_weight == 1:
        return alignment + uniformity
    # Cosine alignment is -mean(cos)/tau >= -1/tau: the constant makes the added misalignment
    # term >= 0, so the loss's value stays comparable; a constant leaves every gradient as it is.
    offset = (align_weight - 1.0) / tau if similarity == "cosine" else 0.0
    return align_weight * alignment + uniformity + offset


def text_uniformity(z_t: torch.Tensor, tau: float = 0.1, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Uniformity of the captions among themselves: ``mean_i logsumexp_{j != i} cos(t_i, t_j) / tau``.

    InfoNCE's own uniformity part contrasts each caption with the batch's *images*. When the image
    encoder ignores a factor, that part no longer separates captions that differ only in it; once
    the text encoder has merged them too, neither encoder gets a gradient from InfoNCE to tell them
    apart (a stationary point). This term separates the captions on their own side. Where every
    image and its caption coincide it equals InfoNCE's caption-side uniformity part with each image
    replaced by its caption; elsewhere it changes the objective (expected, not covered by
    Theorem 4.1's analysis of Eq. 2).

    Args:
        z_t: caption representations, shape (B, K) (cosine similarity).
        exclude: optional bool mask (B, B): ``True`` leaves t_j out of t_i's sum (e.g. captions
            stating the same thing); the diagonal is always left out. A row with nothing left adds 0.

    Returns:
        A scalar.
    """
    _check("cosine", tau)
    if z_t.dim() != 2 or z_t.shape[0] < 2:
        raise ValueError(f"z_t must have shape (B, K) with B >= 2; got {tuple(z_t.shape)}.")
    n = z_t.shape[0]
    drop = torch.eye(n, dtype=torch.bool, device=z_t.device)
    if exclude is not None:
        if exclude.shape != (n, n) or exclude.dtype != torch.bool:
            raise ValueError(f"exclude must be a bool mask of shape ({n}, {n}); got "
                             f"{exclude.dtype} of shape {tuple(exclude.shape)}.")
        drop = drop | exclude
    t = F.normalize(z_t, dim=-1)
    lse = torch.logsumexp((t @ t.T / tau).masked_fill(drop, float("-inf")), dim=1)
    return torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse)).mean()
