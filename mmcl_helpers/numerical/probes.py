"""Probes: how much of each factor can be read off a learned representation.

A probe is fit on one sample set and scored on another. Regression probes report R^2 clipped to
[0, 1] (sklearn's ``r2_score``; a block such as m_x gets the mean R^2 of its components);
classification probes report the Matthews correlation coefficient (sklearn's
``matthews_corrcoef``). Representations are standardised first.

The nonlinear probe is a small MLP trained in torch on the representation's device. Many probes
(several models, several factors) train at once as one :class:`~mmcl_helpers.numerical.encoders.EnsembleMLP`,
which is what makes probing a whole sweep take seconds rather than minutes.

:func:`probe_representations` is the probing entry point of the image-text and policy studies:
give it representations and :class:`FactorSpec` s and it returns the long score table (adding a
probe means adding it there). The numerical study probes through :func:`linear_r2` and
:func:`mlp_r2` directly (:func:`~mmcl_helpers.numerical.experiments.evaluate_run`), because all of its
factors are continuous and share one ensemble.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import matthews_corrcoef, r2_score

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.results import MCC, R2
from mmcl_helpers.core.timing import timed
from mmcl_helpers.numerical.encoders import EnsembleMLP

__all__ = [
    "standardize",
    "linear_r2",
    "mlp_r2",
    "linear_mcc",
    "mlp_mcc",
    "mlp_classifier",
    "block_r2",
    "fit_mlp",
    "FactorSpec",
    "probe_representations",
]


def standardize(
    train: torch.Tensor, test: torch.Tensor, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale both sets by the training set's mean and standard deviation (over dim -2)."""
    mean = train.mean(-2, keepdim=True)
    std = train.std(-2, keepdim=True)
    # Constant (e.g. zero-padded) columns stay zero instead of being blown up.
    std = torch.where(std > eps, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def block_r2(y_true: np.ndarray, y_pred: np.ndarray, blocks: Sequence[slice]) -> np.ndarray:
    """R^2 per block of target columns, each the mean over its columns, clipped to [0, 1].

    Args:
        y_true, y_pred: shape (N, D).
        blocks: column slices, one per factor.

    Returns:
        shape (len(blocks),).
    """
    return np.array(
        [
            np.clip(r2_score(y_true[:, b], y_pred[:, b], multioutput="uniform_average"), 0.0, 1.0)
            for b in blocks
        ]
    )


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


@timed("probing")
def linear_r2(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
    blocks: Sequence[slice],
) -> np.ndarray:
    """R^2 of linear regression from each representation to each factor block.

    Args:
        z_train, z_test: representations, shape (E, N, K) or (N, K).
        y_train, y_test: targets, shape (N, D), shared by all E representations.
        blocks: column slices of the targets, one per factor.

    Returns:
        shape (E, len(blocks)) (or (len(blocks),) for 2-D inputs).
    """
    squeeze = z_train.dim() == 2
    if squeeze:
        z_train, z_test = z_train[None], z_test[None]
    z_train, z_test = standardize(z_train, z_test)
    yt, ys = _as_numpy(y_train), _as_numpy(y_test)
    out = np.stack(
        [
            block_r2(ys, LinearRegression().fit(_as_numpy(a), yt).predict(_as_numpy(b)), blocks)
            for a, b in zip(z_train, z_test)
        ]
    )
    return out[0] if squeeze else out


@timed("probing")
def fit_mlp(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    out_dim: int,
    hidden: Sequence[int],
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    in_dims: Sequence[int] | None = None,
) -> EnsembleMLP:
    """Fit an ensemble of MLPs (one per representation) by Adam with cosine annealing.

    Args:
        z_train: inputs, shape (E, N, K).
        y_train: targets, shape (E, N, ...), read by ``loss_fn(outputs, targets)``.
        loss_fn: ``(outputs (E, B, out_dim), targets (E, B, ...)) -> scalar loss``.
        out_dim, hidden: output size and hidden widths of each member.
        steps, lr, batch_size: Adam steps (the loop of :func:`~mmcl_helpers.numerical.training.adam_loop`),
            learning rate and minibatch size.
        seed: seeds initialisation and minibatches.
        in_dims: input size per member (the rest of K is zero padding).

    Returns:
        the fitted :class:`EnsembleMLP`, in eval mode.
    """
    from mmcl_helpers.numerical.training import adam_loop

    e, n, k = z_train.shape
    gen = torch.Generator(device=z_train.device).manual_seed(seed)
    torch.manual_seed(seed)
    dims = list(in_dims) if in_dims is not None else [k] * e
    net = EnsembleMLP(dims, [out_dim] * e, hidden, negative_slope=0.01, batch_norm=False)
    net = net.to(z_train.device).train()
    b = min(batch_size, n)

    def step_loss(step: int) -> torch.Tensor:
        idx = torch.randint(0, n, (b,), generator=gen, device=z_train.device)
        return loss_fn(net(z_train[:, idx]), y_train[:, idx])

    adam_loop(list(net.parameters()), step_loss, steps=steps, lr=lr, warmup=0.0, grad_clip=None,
              clip="none", schedule="cosine_annealing", fused=True, hint="probe", desc="probe",
              progress=False)
    return net.eval()


@timed("probing")
def mlp_r2(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
    blocks: Sequence[slice],
    steps: int = 1000,
    hidden: Sequence[int] = (64, 64),
    lr: float = 3e-3,
    batch_size: int = 1024,
    seed: int = 0,
    in_dims: Sequence[int] | None = None,
) -> np.ndarray:
    """R^2 of a nonlinear (MLP) probe from each representation to each factor block.

    One MLP per representation predicts all standardised target columns; R^2 is read per block.
    All E probes train together as one ensemble.

    Args:
        z_train, z_test: shape (E, N, K) or (N, K).
        y_train, y_test: shape (N, D).
        blocks: column slices, one per factor.
        steps, hidden, lr, batch_size, seed: probe training.
        in_dims: the number of leading columns of z each probe reads (default all K), for
            representations of different sizes zero-padded to a common K.

    Returns:
        shape (E, len(blocks)) (or (len(blocks),) for 2-D inputs).
    """
    val.check_params("mlp_r2", steps=(steps, val.POSITIVE_INT), lr=(lr, val.POSITIVE_REAL),
                     batch_size=(batch_size, val.POSITIVE_INT), seed=(seed, val.NONNEG_INT),
                     hidden=(hidden, val.SequenceOf(val.POSITIVE_INT, min_len=0)))
    squeeze = z_train.dim() == 2
    if squeeze:
        z_train, z_test = z_train[None], z_test[None]
    z_train, z_test = standardize(z_train.float(), z_test.float())
    y_mean, y_std = y_train.mean(0), y_train.std(0) + 1e-8
    yt = ((y_train - y_mean) / y_std).float().to(z_train.device)
    yt = yt.unsqueeze(0).expand(z_train.shape[0], -1, -1)
    net = fit_mlp(
        z_train, yt, lambda p, y: (p - y).pow(2).mean(), yt.shape[-1], hidden, steps, lr,
        batch_size, seed, in_dims,
    )
    with torch.no_grad():
        pred = net(z_test).cpu() * y_std.cpu() + y_mean.cpu()
    ys = _as_numpy(y_test)
    out = np.stack([block_r2(ys, p.double().numpy(), blocks) for p in pred])
    return out[0] if squeeze else out


@timed("probing")
def linear_mcc(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
) -> float:
    """MCC of a logistic-regression classifier; z (N, K), integer labels y (N,)."""
    z_train, z_test = standardize(z_train.float(), z_test.float())
    clf = LogisticRegression(max_iter=1000).fit(_as_numpy(z_train), _as_numpy(y_train).astype(int))
    pred = clf.predict(_as_numpy(z_test))
    return float(matthews_corrcoef(_as_numpy(y_test).astype(int), pred))


@timed("probing")
def mlp_classifier(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    steps: int = 1000,
    hidden: Sequence[int] = (64, 64),
    lr: float = 3e-3,
    batch_size: int = 1024,
    seed: int = 0,
    in_dims: Sequence[int] | None = None,
) -> Callable[[torch.Tensor], np.ndarray]:
    """Fit MLP classifiers and return their predict function.

    Args:
        z_train: representations, shape (E, N, K).
        y_train: integer labels, shape (N,) (shared) or (E, N).
        in_dims: leading columns of z each classifier reads (default all), as in :func:`mlp_r2`.

    Returns:
        ``predict(z)`` mapping (E, M, K) representations (standardised with the training
        statistics) to predicted labels of shape (E, M).
    """
    val.check_params("mlp_classifier", steps=(steps, val.POSITIVE_INT), lr=(lr, val.POSITIVE_REAL),
                     batch_size=(batch_size, val.POSITIVE_INT), seed=(seed, val.NONNEG_INT),
                     hidden=(hidden, val.SequenceOf(val.POSITIVE_INT, min_len=0)))
    e = z_train.shape[0]
    if y_train.dim() == 1:
        y_train = y_train.expand(e, -1)
    z_train = z_train.float()
    mean, std = z_train.mean(-2, keepdim=True), z_train.std(-2, keepdim=True)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    n_classes = int(y_train.max()) + 1
    yt = y_train.long().to(z_train.device)

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits.reshape(-1, n_classes), y.reshape(-1))

    net = fit_mlp(
        (z_train - mean) / std, yt, loss_fn, n_classes, hidden, steps, lr, batch_size, seed, in_dims
    )

    @torch.no_grad()
    def predict(z: torch.Tensor) -> np.ndarray:
        return net((z.float().to(mean.device) - mean) / std).argmax(-1).cpu().numpy()

    return predict


@timed("probing")
def mlp_mcc(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
    steps: int = 1000,
    hidden: Sequence[int] = (64, 64),
    lr: float = 3e-3,
    batch_size: int = 1024,
    seed: int = 0,
) -> np.ndarray | float:
    """MCC of MLP classifiers.

    Args:
        z_train, z_test: representations, shape (E, N, K) or (N, K).
        y_train, y_test: integer class labels, shape (N,), or (E, N) for one target per member.

    Returns:
        shape (E,) (a float for 2-D inputs).
    """
    val.check_params("mlp_mcc", steps=(steps, val.POSITIVE_INT), lr=(lr, val.POSITIVE_REAL),
                     batch_size=(batch_size, val.POSITIVE_INT), seed=(seed, val.NONNEG_INT),
                     hidden=(hidden, val.SequenceOf(val.POSITIVE_INT, min_len=0)))
    squeeze = z_train.dim() == 2
    if squeeze:
        z_train, z_test = z_train[None], z_test[None]
    e = z_train.shape[0]
    predict = mlp_classifier(z_train, y_train, steps, hidden, lr, batch_size, seed)
    pred = predict(z_test)
    truth = y_test.expand(e, -1).cpu().numpy().astype(int) if y_test.dim() == 1 else (
        y_test.cpu().numpy().astype(int)
    )
    out = np.array([matthews_corrcoef(truth[i], pred[i]) for i in range(e)])
    return float(out[0]) if squeeze else out


@dataclass(frozen=True)
class FactorSpec:
    """A factor to probe for.

    Attributes:
        name: factor name (e.g. ``shape``, ``color``, ``rotation``, ``template``).
        train, test: its values on the probe-training and probe-test pairs, shape (N,) each.
        classes: number of classes of a discrete factor (scored by MCC); 0 for a continuous one
            (scored by R^2).
        encoders: which representations to probe (``"x"``, ``"t"``).
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    classes: int = 0
    encoders: tuple[str, ...] = ("x", "t")


def _pad(zs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    width = max(z.shape[-1] for z in zs)
    dims = [z.shape[-1] for z in zs]
    return torch.stack([torch.nn.functional.pad(z, (0, width - z.shape[-1])) for z in zs]), dims


@timed("probing")
def probe_representations(
    reps: Mapping[tuple[str, str], tuple[torch.Tensor, torch.Tensor]],
    factors: Sequence[FactorSpec],
    probe_steps: int,
    seed: int = 1000,
    linear: bool = True,
) -> pd.DataFrame:
    """Score how well each factor can be read off each representation.

    All MLP probes of a call train together as one ensemble (one member per representation and
    discrete factor, one per representation for all continuous factors).

    Args:
        reps: ``(model key, encoder)`` -> ``(z_train, z_test)``, shapes (N_train, K) and
            (N_test, K); K may differ between representations.
        factors: what to probe for.
        probe_steps: Adam steps of the MLP probes.
        seed: probe seed (keep it different from the training seed).
        linear: also fit the linear probes (logistic / linear regression).

    Returns:
        tidy frame with columns key, encoder, factor, probe (``mlp``/``linear``), metric
        (``mcc``/``r2``), score. MCC lies in [-1, 1], R^2 is clipped to [0, 1].
    """
    rows: list[dict] = []
    keys = list(reps)
    discrete = [f for f in factors if f.classes > 0]
    continuous = [f for f in factors if f.classes == 0]
    # Discrete factors: one MLP classifier per (representation, factor).
    members = [(k, f) for k in keys for f in discrete if k[1] in f.encoders]
    if members:
        z_tr, dims = _pad([reps[k][0] for k, _ in members])
        z_te, _ = _pad([reps[k][1] for k, _ in members])
        y_tr = torch.stack([torch.as_tensor(np.asarray(f.train), dtype=torch.long) for _, f in members])
        predict = mlp_classifier(z_tr, y_tr, steps=probe_steps, seed=seed, in_dims=dims)
        pred = predict(z_te)
        for m, (k, f) in enumerate(members):
            score = float(matthews_corrcoef(np.asarray(f.test).astype(int), pred[m]))
            rows.append(dict(key=k[0], encoder=k[1], factor=f.name, probe="mlp", metric=MCC,
                             score=score))
            if linear:
                z_a, z_b = reps[k]
                score = linear_mcc(z_a, torch.as_tensor(np.asarray(f.train)), z_b,
                                   torch.as_tensor(np.asarray(f.test)))
                rows.append(dict(key=k[0], encoder=k[1], factor=f.name, probe="linear",
                                 metric=MCC, score=score))
    # Continuous factors: one MLP regression per representation for all of its factors.
    for enc in ("x", "t"):
        cols = [f for f in continuous if enc in f.encoders]
        ks = [k for k in keys if k[1] == enc]
        if not cols or not ks:
            continue
        y_tr = torch.as_tensor(np.stack([np.asarray(f.train, dtype=np.float64) for f in cols], 1))
        y_te = torch.as_tensor(np.stack([np.asarray(f.test, dtype=np.float64) for f in cols], 1))
        blocks = [slice(j, j + 1) for j in range(len(cols))]
        z_tr, dims = _pad([reps[k][0] for k in ks])
        z_te, _ = _pad([reps[k][1] for k in ks])
        scores = mlp_r2(z_tr, y_tr, z_te, y_te, blocks, steps=probe_steps, seed=seed, in_dims=dims)
        lin = linear_r2(z_tr, y_tr, z_te, y_te, blocks) if linear else None
        for m, k in enumerate(ks):
            for j, f in enumerate(cols):
                rows.append(dict(key=k[0], encoder=enc, factor=f.name, probe="mlp", metric=R2,
                                 score=float(scores[m, j])))
                if lin is not None:
                    rows.append(dict(key=k[0], encoder=enc, factor=f.name, probe="linear",
                                     metric=R2, score=float(lin[m, j])))
    return pd.DataFrame(rows, columns=["key", "encoder", "factor", "probe", "metric", "score"])
