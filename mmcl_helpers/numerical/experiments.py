"""One call from bias settings to a tidy table of probe scores (the numerical study, §5.1).

:func:`run_numerical` builds the latent model and mixing functions, trains an image and a text
encoder per setting (all settings side by side), then probes every factor from z_hat_x and z_hat_t
on held-out samples drawn with a separate evaluation seed. The result's ``scores`` DataFrame has one
row per (seed, setting, encoder, factor, probe).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch

from mmcl_helpers.core import validation as v
from mmcl_helpers.core.biases import CaptionBias, format_set
from mmcl_helpers.core.model_store import PlannedTraining
from mmcl_helpers.core.profiles import Profile, active_profile
from mmcl_helpers.core.results import NUMERICAL_BARS, R2, StudyResult, factor_role
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.numerical.probes import linear_r2, mlp_r2
from mmcl_helpers.numerical.simulation import MultimodalSimulation, PairBatch
from mmcl_helpers.numerical.training import TrainResult
from mmcl_helpers.numerical.training_cache import trained_encoders

__all__ = [
    "NumericalRun",
    "run_numerical",
    "numerical_training_plan",
    "evaluate_run",
    "factor_names",
    "semantic_names",
    "numerical_selection_sweep",
    "numerical_perturbation_sweep",
    "dependent_columns",
    "theorem_pattern",
    "with_theory",
    "recovery_by_variance",
    "score_grid",
    "encoder_grids",
    "mean_by_factor",
    "theorem_checks",
    "ProbedSetting",
    "probe_setting",
    "EVAL_SEED_OFFSET",
]

# The evaluation samples use their own seed, so that probes never see training batches.
EVAL_SEED_OFFSET = 10_000
def semantic_names(n_semantic: int) -> list[str]:
    """``["s1", ..., "sN"]``: the simulation's semantic factors, in order."""
    return [f"s{i}" for i in range(1, n_semantic + 1)]


def factor_names(n_semantic: int) -> list[str]:
    """``["s1", ..., "sN", "mx", "mt"]``: the factor names used in every table and plot."""
    return semantic_names(n_semantic) + ["mx", "mt"]


def score_grid(
    scores: pd.DataFrame, probe: str = "mlp", encoder: str = "x", column: str = "setting"
) -> pd.DataFrame:
    """Mean score over seeds as a factor x setting grid (the layout of the paper's Fig. 3 and 7).

    Args:
        scores: a tidy score table (:attr:`NumericalRun.scores`).
        probe, encoder: which cells to show.
        column: name columns by ``"setting"`` (full label), ``"selected"`` or ``"perturbed"`` (the
            set in paper notation, e.g. ``[3]``).
    """
    df = scores[(scores["probe"] == probe) & (scores["encoder"] == encoder)].copy()
    if column in ("selected", "perturbed"):
        df["column"] = df[column].map(format_set)
    elif column == "setting":
        df["column"] = df["setting"]
    else:
        raise ValueError(f"column must be 'setting', 'selected' or 'perturbed', got {column!r}.")
    grid = df.pivot_table(index="factor", columns="column", values="score", aggfunc="mean")
    return grid.reindex(
        index=list(dict.fromkeys(df["factor"])), columns=list(dict.fromkeys(df["column"]))
    )


def encoder_grids(scores: pd.DataFrame, probe: str = "mlp", column: str = "setting") -> list[pd.DataFrame]:
    """``[grid of ẑ_x, grid of ẑ_t]`` (:func:`score_grid`): the two panels of a sweep figure."""
    return [score_grid(scores, probe, encoder, column) for encoder in ("x", "t")]


def mean_by_factor(scores: pd.DataFrame, encoder: str = "x", probe: str = "linear") -> pd.Series:
    """Mean score per factor (over settings and seeds), in table order: one row of Tables 4-5."""
    part = scores[(scores["encoder"] == encoder) & (scores["probe"] == probe)]
    if part.empty:
        raise ValueError(f"no scores for encoder={encoder!r}, probe={probe!r}.")
    return part.groupby("factor", sort=False)["score"].mean()


def numerical_selection_sweep(n_semantic: int = 10) -> list[CaptionBias]:
    """Captions keep {1}, [2], ..., [n] and perturb nothing (the paper's Fig. 3)."""
    return [CaptionBias(range(1, k + 1), (), n_semantic) for k in range(1, n_semantic + 1)]


def dependent_columns(sweep: list[CaptionBias], stride: int) -> list[CaptionBias]:
    """The columns of ``sweep`` the dependent-semantics runs train: every ``stride``-th, and always
    the last (``Profile.dependent_stride``; 1 keeps them all)."""
    v.check_params("dependent_columns", stride=(stride, v.POSITIVE_INT))
    out = list(sweep)[::stride]
    return out if not sweep or sweep[-1] in out else [*out, sweep[-1]]


def numerical_perturbation_sweep(n_semantic: int = 10, p_perturb: float = 0.75) -> list[CaptionBias]:
    """Full selection with perturbed sets [n-1], ..., [2], {1}, ∅ (the paper's Fig. 7 order)."""
    full = range(1, n_semantic + 1)
    return [
        CaptionBias(full, range(1, k + 1), n_semantic, p_perturb) for k in range(n_semantic - 1, -1, -1)
    ]


@dataclass
class NumericalRun(StudyResult):
    """Scores and trained models of :func:`run_numerical`.

    Attributes:
        scores: long table (:data:`~mmcl_helpers.core.results.SCORE_COLUMNS`) with columns seed,
            member (position of the setting in the run), setting, selected, perturbed, encoder
            (x/t), factor (s1..sN, mx, mt), role, probe (linear/mlp), metric (always ``r2``) and
            score.
        trained: one :class:`TrainResult` per seed.
        config: the run's full configuration (saved by :meth:`save`).
        simulations: the data-generating process of each seed (for further evaluation).
    """

    trained: list[TrainResult] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    simulations: list[MultimodalSimulation] = field(default_factory=list)

    def table(self, probe: str = "mlp", encoder: str = "x", column: str = "setting") -> pd.DataFrame:
        """Mean R^2 over seeds as a factor x setting grid (see :func:`score_grid`)."""
        return score_grid(self.scores, probe, encoder, column)


@torch.no_grad()
def evaluate_run(
    sim: MultimodalSimulation,
    trained: TrainResult,
    profile: Profile,
    seed: int,
    probes: Sequence[str] = ("linear", "mlp"),
) -> pd.DataFrame:
    """Probe every factor from z_hat_x and z_hat_t of every setting; returns the tidy scores."""
    device = trained.f_x[0].in_mask.device
    gen = torch.Generator(device=device).manual_seed(seed + EVAL_SEED_OFFSET)
    n_tr, n_te = profile.probe_train, profile.probe_test
    batch = sim.sample(n_tr + n_te, gen)
    z_x, z_t = trained.represent(batch.x, batch.t)
    lat = batch.latents
    y = torch.cat([lat.s, lat.m_x, lat.m_t], dim=1).cpu()
    n_s = sim.model.n_semantic
    blocks = [slice(i, i + 1) for i in range(n_s)]
    blocks += [slice(n_s, n_s + sim.model.n_image), slice(n_s + sim.model.n_image, y.shape[1])]
    names, semantics = factor_names(n_s), semantic_names(n_s)
    e = len(sim.biases)
    sizes = trained.encoding_sizes()
    results: dict[tuple[str, str], list] = {}
    reps = {"x": z_x, "t": z_t}
    if "linear" in probes:
        for enc, z in reps.items():
            # Drop the zero padding so each setting is probed on its own output dimensions.
            results[(enc, "linear")] = [
                linear_r2(z[k, :n_tr, : sizes[k]], y[:n_tr], z[k, n_tr:, : sizes[k]], y[n_tr:], blocks)
                for k in range(e)
            ]
    if "mlp" in probes:
        # All 2E probes (image and text, every setting) train together as one ensemble, each
        # reading only its own setting's output dimensions.
        zz = torch.cat([z_x, z_t])
        with torch.enable_grad():
            r2 = mlp_r2(zz[:, :n_tr], y[:n_tr].to(device), zz[:, n_tr:], y[n_tr:], blocks,
                        steps=profile.probe_steps, seed=seed + EVAL_SEED_OFFSET, in_dims=sizes * 2)
        results[("x", "mlp")], results[("t", "mlp")] = list(r2[:e]), list(r2[e:])
    rows = []
    for (enc, probe), per_setting in results.items():
        for k, bias in enumerate(sim.biases):
            for f, name in enumerate(names):
                rows.append(
                    {
                        "seed": seed,
                        "member": k,
                        "setting": bias.label,
                        "selected": sorted(bias.selected),
                        "perturbed": sorted(bias.perturbed),
                        "encoder": enc,
                        "factor": name,
                        "role": factor_role(bias, name, semantics),
                        "probe": probe,
                        "metric": R2,
                        "score": float(per_setting[k][f]),
                    }
                )
    return pd.DataFrame(rows)


@dataclass
class ProbedSetting:
    """One setting of a trained run, encoded on fresh samples and probed (:func:`probe_setting`).

    Attributes:
        batch: the fresh samples (``n_train + n_test`` pairs, on the training device).
        z_x, z_t: that setting's representations, CPU tensors of shape (N, encoding size).
        r2: MLP-probe R^2 per factor (rows s1..sN, mx, mt), columns ``from z_hat_x`` and
            ``from z_hat_t``.
    """

    batch: PairBatch
    z_x: torch.Tensor
    z_t: torch.Tensor
    r2: pd.DataFrame


def probe_setting(
    sim: MultimodalSimulation,
    trained: TrainResult,
    n_train: int,
    n_test: int,
    sample_seed: int,
    probe_steps: int,
    probe_seed: int,
    member: int = 0,
) -> ProbedSetting:
    """Encode fresh samples with one setting's encoders and probe every factor (MLP probes).

    The probes of ẑ_x and ẑ_t train together (one ensemble); each block of the factors (every
    semantic, m_x, m_t) is scored by R^2 on the last ``n_test`` samples.

    Args:
        sim, trained: the simulation and the encoders trained on it.
        n_train, n_test: samples to fit the probes on and to score them on.
        sample_seed: seed of the fresh samples (keep it apart from training and evaluation).
        probe_steps, probe_seed: Adam steps and seed of the probes.
        member: which setting of the run.
    """
    if not 0 <= member < len(trained.members):
        raise ValueError(f"member must lie in 0..{len(trained.members) - 1}, got {member!r}.")
    device = trained.f_x[0].in_mask.device
    batch = sim.sample(n_train + n_test, torch.Generator(device=device).manual_seed(sample_seed))
    z_x, z_t = (z[member].cpu() for z in trained.represent(batch.x, batch.t))
    size = trained.encoding_sizes()[member]
    z_x, z_t = z_x[:, :size], z_t[:, :size]
    lat = batch.latents
    y = torch.cat([lat.s, lat.m_x, lat.m_t], dim=1).cpu()
    n_s, n_x = sim.model.n_semantic, sim.model.n_image
    blocks = [slice(i, i + 1) for i in range(n_s)] + [slice(n_s, n_s + n_x), slice(n_s + n_x, y.shape[1])]
    z = torch.stack([z_x, z_t])
    r2 = mlp_r2(z[:, :n_train], y[:n_train], z[:, n_train:], y[n_train:], blocks, steps=probe_steps,
                seed=probe_seed)
    table = pd.DataFrame(r2.T, index=factor_names(n_s), columns=["from z_hat_x", "from z_hat_t"])
    return ProbedSetting(batch, z_x, z_t, table)


def run_numerical(
    settings: Iterable[CaptionBias],
    *,
    dependent: bool = False,
    n_image: int = 5,
    n_text: int = 5,
    profile: Profile | str | None = None,
    seeds: int | Sequence[int] = 0,
    encoding_sizes: list[int] | None = None,
    device: str | None = None,
    progress: bool | None = None,
    probes: Sequence[str] = ("linear", "mlp"),
    cache: bool | None = None,
) -> NumericalRun:
    """Train and probe MMCL for several bias settings of the numerical study.

    Args:
        settings: the caption biases to compare (all with the same ``n_semantic``).
        dependent: dependent semantics (Wishart covariance) instead of independent ones.
        n_image, n_text: sizes of m_x and m_t.
        profile: a :class:`Profile`, a profile name, or ``None`` for the active profile.
        seeds: one seed or several; each seed redraws covariances, mixing, initialisation and data.
        encoding_sizes: encoder output size per setting (default: unbiased count + extra dims).
        device: default CUDA when available.
        progress: show progress bars (default: on unless ``MMCL_PROGRESS=0``).
        probes: any of ``"linear"``, ``"mlp"``.
        cache: reuse encoders trained earlier for exactly the same inputs, and keep newly trained
            ones (:func:`~mmcl_helpers.numerical.training_cache.training_cache_path`); default on unless
            ``MMCL_CACHE=0``. A later chapter
            that needs the models of an earlier one (chapter 3 reuses chapter 2's selection
            sweep) then costs no training. Probes always run afresh.

    Returns:
        a :class:`NumericalRun`; ``config["from_cache"]`` says, per seed, whether the encoders
        were loaded rather than trained.
    """
    settings = list(settings) if isinstance(settings, Iterable) else settings
    ok = v.check_params(
        "run_numerical", settings=(settings, v.SequenceOf(v.InstanceOf(CaptionBias))),
        dependent=(dependent, v.BOOLEAN), n_image=(n_image, v.POSITIVE_INT), n_text=(n_text, v.POSITIVE_INT),
        profile=(profile, [v.InstanceOf(Profile), v.InstanceOf(str), None]), seeds=(seeds, v.SEEDS),
        encoding_sizes=(encoding_sizes, [v.SequenceOf(v.POSITIVE_INT), None]),
        progress=(progress, [v.BOOLEAN, None]),
        probes=(probes, v.SequenceOf(v.Options(str, ("linear", "mlp")))),
        cache=(cache, [v.BOOLEAN, None]),
    )
    dependent, n_image, n_text, encoding_sizes = (ok[k] for k in ("dependent", "n_image", "n_text",
                                                                  "encoding_sizes"))
    n_semantic = settings[0].n_semantic
    prof = profile if isinstance(profile, Profile) else active_profile(profile)
    device = v.check_device(device, "run_numerical")
    seed_list = [ok["seeds"]] if isinstance(ok["seeds"], int) else ok["seeds"]
    frames, trained, sims, cached = [], [], [], []
    for seed in seed_list:
        model = LatentModel(n_semantic, n_image, n_text, dependent=dependent, seed=seed)
        sim = MultimodalSimulation(model, settings, seed=seed)
        result, from_store = trained_encoders(sim, dependent, n_image, n_text, prof, seed, encoding_sizes,
                                              device, progress, cache)
        cached.append(from_store)
        trained.append(result)
        sims.append(sim)
        frames.append(evaluate_run(sim, result, prof, seed, probes))
    config = {
        **trained[0].config,
        "seeds": seed_list,
        "dependent": dependent,
        "n_semantic": n_semantic,
        "n_image": n_image,
        "n_text": n_text,
        "train_seconds": [round(r.seconds, 2) for r in trained],
        "from_cache": cached,
    }
    config.pop("seed", None)
    return NumericalRun(pd.concat(frames, ignore_index=True), trained, config, sims)


def numerical_training_plan(
    settings: Sequence[CaptionBias], profile: Profile | str | None = None, seeds: int | Sequence[int] = 0,
) -> list[PlannedTraining]:
    """What :func:`run_numerical` with these arguments trains: one ensemble of ``len(settings)``
    encoder pairs per seed, ``profile.steps`` steps each (store hits then skip some of them)."""
    prof = profile if isinstance(profile, Profile) else active_profile(profile)
    n_seeds = 1 if isinstance(seeds, int) else len(list(seeds))
    return [PlannedTraining("numerical", len(list(settings)), n_seeds, prof.steps, prof)]


def theorem_pattern(scores: pd.DataFrame, probe: str = "mlp") -> pd.DataFrame:
    """The worst case of each role, per encoder: what Theorem 4.1 predicts, at a glance.

    Returns:
        one row per (encoder, role) with the number of cells, the minimum and the maximum
        score over all settings and seeds, and what the theorem predicts for independent
        semantics (1 for unbiased semantics, 0 for everything else). With dependent semantics a
        discarded factor keeps the part its correlates explain; :func:`with_theory` gives that
        prediction per cell.
    """
    df = scores[scores["probe"] == probe]
    out = (
        df.groupby(["encoder", "role"])["score"].agg(cells="size", min="min", max="max").reset_index()
    )
    out["theory"] = out["role"].map(lambda r: 1.0 if r == "unbiased" else 0.0)
    return out


def theorem_checks(pattern: pd.DataFrame, discarded: str = "omitted", encoder: str = "x") -> pd.DataFrame:
    """The numerical chapters' bars (:data:`~mmcl_helpers.core.results.NUMERICAL_BARS`) on a pattern.

    Args:
        pattern: :func:`theorem_pattern` of a run.
        discarded: the discarded role of the sweep (``"omitted"`` or ``"perturbed"``).
        encoder: which representation to check.

    Returns:
        one row per role (unbiased, ``discarded``, image-specific, text-specific): role, op
        (``>=`` or ``<=``), bar, worst (the minimum for ``>=``, the maximum for ``<=``), met.

    Raises:
        ValueError: ``discarded`` is not a discarded role, or the pattern lacks a role.
    """
    if discarded not in ("omitted", "perturbed"):
        raise ValueError(f"discarded must be 'omitted' or 'perturbed', got {discarded!r}.")
    zx = pattern[pattern["encoder"] == encoder].set_index("role")
    rows = []
    for role in ("unbiased", discarded, "image-specific", "text-specific"):
        if role not in zx.index:
            raise ValueError(f"the pattern has no {role!r} cells for encoder {encoder!r}.")
        op, bar = NUMERICAL_BARS[role]
        worst = float(zx.loc[role, "min"] if op == ">=" else zx.loc[role, "max"])
        met = worst >= bar if op == ">=" else worst <= bar
        rows.append(dict(role=role, op=op, bar=bar, worst=worst, met=bool(met)))
    return pd.DataFrame(rows)


def _simulations_by_seed(run: NumericalRun) -> dict[int, MultimodalSimulation]:
    seeds = list(run.config.get("seeds", []))
    if len(seeds) != len(run.simulations):
        raise ValueError("this run does not carry one simulation per seed; re-run run_numerical.")
    return dict(zip(seeds, run.simulations))


def with_theory(run: NumericalRun) -> pd.DataFrame:
    """``run.scores`` with a ``theory`` column: the R^2 Theorem 4.1 predicts for each cell.

    An encoder that keeps exactly the unbiased semantics predicts an unbiased factor with R^2 1,
    ``m_x`` and ``m_t`` with 0, and an omitted or perturbed factor as well as the unbiased block
    explains it (:meth:`~mmcl_helpers.numerical.latents.LatentModel.explained_r2`): 0 for independent
    semantics, the partial value of the seed's Wishart covariance for dependent ones.
    """
    sims = _simulations_by_seed(run)
    cells = run.scores[["seed", "member", "factor"]].drop_duplicates()
    cells["theory"] = [
        0.0 if f in ("mx", "mt")
        else sims[s].model.explained_r2(int(f[1:]), sims[s].biases[m].unbiased)
        for s, m, f in zip(cells["seed"], cells["member"], cells["factor"])
    ]
    return run.scores.merge(cells, on=["seed", "member", "factor"], how="left")


def recovery_by_variance(
    run: NumericalRun, member: int, encoder: str = "x", probe: str = "mlp"
) -> tuple[pd.DataFrame, float]:
    """How well each *unbiased* semantic of one setting is recovered, beside its variance.

    With dependent semantics the Wishart draw gives factors very different variances. The theorem
    recovers every unbiased factor regardless, but a finite run resolves the small ones last;
    this table lets a reader check that.

    Args:
        run: a :class:`NumericalRun`.
        member: index of the setting in the run's settings.
        encoder, probe: which scores to read (``"x"``/``"t"``, ``"mlp"``/``"linear"``).

    Returns:
        ``(table, rho)``: one row per (seed, unbiased factor) with the factor's variance
        ``Sigma_s[i, i]`` and its mean score, sorted by seed then variance; and the Spearman rank
        correlation between variance and score, averaged over seeds (NaN with fewer than three
        unbiased factors).
    """
    from scipy.stats import spearmanr

    sims = _simulations_by_seed(run)
    if not 0 <= member < len(run.simulations[0].biases):
        raise ValueError(
            f"member must lie in 0..{len(run.simulations[0].biases) - 1}, got {member!r}."
        )
    frames, rhos = [], []
    for seed, sim in sims.items():
        unbiased = sorted(sim.biases[member].unbiased)
        names = [f"s{i}" for i in unbiased]
        cells = run.scores.query(
            "seed == @seed and member == @member and encoder == @encoder and probe == @probe"
        )
        score = cells.groupby("factor")["score"].mean().reindex(names).to_numpy()
        variance = [float(sim.model.cov_s[i - 1, i - 1]) for i in unbiased]
        frame = pd.DataFrame({"seed": seed, "factor": names, "variance": variance, "r2": score})
        frames.append(frame.sort_values("variance"))
        if len(names) >= 3:
            rhos.append(spearmanr(variance, score).statistic)
    rho = float(sum(rhos) / len(rhos)) if rhos else float("nan")
    return pd.concat(frames, ignore_index=True), rho
