"""A held-out protocol for the scenes recipe: caption settings no recipe choice was tuned on.

Chapter 5's recipe (contrast groups, the false-negative mask, the stride rule, the late pull) was
tuned on the chapter's own sweeps. A reader who changes the captions gets settings nobody tuned
on, so the recipe is judged on a fixed set of such settings, drawn once with a recorded seed:

- :data:`HELDOUT_SEED` draws the **held-out** settings (:func:`heldout_settings`), which are only
  ever scored, never tuned on;
- :data:`TUNING_SEED` draws a separate **tuning** set (:func:`tuning_settings`), disjoint from
  the held-out set and from the chapter's sweeps, for whoever changes the recipe next.

Each set has 12 (selected, perturbed) pairs over the seven scene semantics, covering 1 to 6
unbiased factors, each once without and once with perturbation. :func:`heldout_table` trains and
probes them and reports, per setting and seed, the worst selected-and-unperturbed score, the worst
omitted-or-perturbed score and the worst image-specific score against the chapter's bars
(all from the MLP probe; ẑ_x for the semantics, ẑ_x and ẑ_t for the image-specific factors).

Run it at the ``cpu`` profile with ``make scenes-heldout`` (about 1 to 1.5 minutes per setting
and seed on 2 cores), or ``python -m mmcl_helpers.image_text.heldout --profile cpu --seeds 0 1``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import ImageTextProfile, image_text_profile
from mmcl_helpers.core.results import DISCARDED_BAR, LEARNED_BAR
from mmcl_helpers.datasets.naming import bias_from_names, format_factor_set
from mmcl_helpers.datasets.scenes import SEMANTIC_FACTORS

__all__ = ["HELDOUT_SEED", "TUNING_SEED", "IMAGE_BAR", "chapter_settings", "draw_settings",
           "heldout_settings", "tuning_settings", "setting_label", "heldout_table", "main"]

#: Seed that drew the held-out settings (recorded; never change it to make a recipe pass).
HELDOUT_SEED = 20261206
#: Seed that draws the tuning settings (disjoint from the held-out ones and the chapter's).
TUNING_SEED = 7
#: The chapter's bar for image-specific factors (chapter 5's third check).
IMAGE_BAR = 0.1


def chapter_settings() -> set[tuple[frozenset[str], frozenset[str]]]:
    """The (selected, perturbed) name sets of chapter 5's selection and perturbation sweeps."""
    out = set()
    for k in range(1, len(SEMANTIC_FACTORS) + 1):  # selection: the first k factors, none perturbed
        out.add((frozenset(SEMANTIC_FACTORS[:k]), frozenset()))
    for j in range(1, len(SEMANTIC_FACTORS) + 1):  # perturbation: all selected, a suffix perturbed
        out.add((frozenset(SEMANTIC_FACTORS), frozenset(SEMANTIC_FACTORS[j:])))
    return out


def draw_settings(seed: int, exclude: set | frozenset = frozenset(),
                  factors: Sequence[str] = SEMANTIC_FACTORS) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Draw 12 (selected, perturbed) settings: 1..6 unbiased factors, each without and with perturbation.

    Args:
        seed: the draw's seed.
        exclude: (selected, perturbed) frozensets of names never to draw (e.g. the chapter's).
        factors: the semantic factors, in their canonical order.

    Returns:
        12 pairs of name tuples in the order of ``factors``; unbiased counts 1,1,2,2,...,6,6, the
        first of each pair without perturbation, the second with 1 or 2 perturbed factors.
    """
    rng = np.random.default_rng(seed)
    drawn: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    seen = set(exclude)
    for n_unbiased in range(1, len(factors)):
        for with_perturbation in (False, True):
            room = len(factors) - n_unbiased
            n_perturbed = int(rng.integers(1, min(2, room) + 1)) if with_perturbation else 0
            for _ in range(1000):
                chosen = rng.choice(len(factors), n_unbiased + n_perturbed, replace=False)
                perturbed_idx = set(chosen[n_unbiased:].tolist())
                selected = tuple(f for i, f in enumerate(factors) if i in set(chosen.tolist()))
                perturbed = tuple(f for i, f in enumerate(factors) if i in perturbed_idx)
                key = (frozenset(selected), frozenset(perturbed))
                if key not in seen:
                    break
            else:  # pragma: no cover - 7 factors leave plenty of room
                raise RuntimeError(f"could not draw a new setting with {n_unbiased} unbiased factors")
            seen.add(key)
            drawn.append((selected, perturbed))
    return drawn


def heldout_settings() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The 12 held-out settings (drawn with :data:`HELDOUT_SEED`, none of the chapter's)."""
    return draw_settings(HELDOUT_SEED, exclude=chapter_settings())


def tuning_settings() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The 12 tuning settings (:data:`TUNING_SEED`), disjoint from the held-out and chapter's sets."""
    held = {(frozenset(s), frozenset(p)) for s, p in heldout_settings()}
    return draw_settings(TUNING_SEED, exclude=chapter_settings() | held)


def setting_label(selected: Sequence[str], perturbed: Sequence[str]) -> str:
    """A short label, e.g. ``"sel {shape, color} pert {color}"``."""
    pert = ", ".join(perturbed) if perturbed else "∅"
    return f"sel {{{', '.join(selected)}}} pert {{{pert}}}"


def _summary(scores: pd.DataFrame, label: str, bias: CaptionBias, seed: int) -> dict:
    mlp = scores[scores["probe"] == "mlp"]
    zx = mlp[mlp["encoder"] == "x"]
    unbiased = zx[zx["role"] == "unbiased"]
    dropped = zx[zx["role"].isin(["omitted", "perturbed"])]
    image = mlp[mlp["role"] == "image-specific"]

    def worst(part: pd.DataFrame, how: str) -> tuple[float, str]:
        if part.empty:
            return float("nan"), ""
        i = part["score"].idxmin() if how == "min" else part["score"].idxmax()
        return float(part.loc[i, "score"]), f"{part.loc[i, 'factor']} (ẑ_{part.loc[i, 'encoder']})"

    learned, learned_at = worst(unbiased, "min")
    leaked, leaked_at = worst(dropped, "max")
    image_leak, image_at = worst(image, "max")
    ok = [learned >= LEARNED_BAR, dropped.empty or leaked <= DISCARDED_BAR, image_leak <= IMAGE_BAR]
    return dict(setting=label, seed=seed, unbiased=len(bias.unbiased),
                worst_learned=round(learned, 3), learned_factor=learned_at,
                worst_dropped=round(leaked, 3) if not dropped.empty else float("nan"),
                dropped_factor=leaked_at,
                worst_image=round(image_leak, 3), image_factor=image_at, passed=bool(all(ok)))


def heldout_table(
    settings: Sequence[tuple[Sequence[str], Sequence[str]]] | None = None,
    profile: ImageTextProfile | None = None,
    seeds: Sequence[int] = (0, 1),
    progress: bool | None = None,
) -> pd.DataFrame:
    """Train and probe each setting for each seed with the chapter's recipe; one row per pair.

    Each (setting, seed) is what ``python -m mmcl_helpers scenes --seed SEED`` trains: data,
    caption and training seed ``seed``, one training seed.

    Args:
        settings: (selected, perturbed) name sequences; default :func:`heldout_settings`.
        profile: sizes; default the active profile's image-text sizes.
        seeds: data-and-training seeds.
        progress: progress bars, as in the sweeps.

    Returns:
        columns setting, seed, unbiased (count), worst_learned (+ learned_factor), worst_dropped
        (+ dropped_factor), worst_image (+ image_factor), passed (every bar met).
    """
    from mmcl_helpers.image_text.sweeps import run_scene_sweeps

    settings = list(settings) if settings is not None else heldout_settings()
    profile = (profile or image_text_profile()).with_overrides(seeds=1)
    biases = {}
    for selected, perturbed in settings:
        bias = bias_from_names(selected, perturbed)
        key = (format_factor_set(bias.selected, SEMANTIC_FACTORS) + " / "
               + format_factor_set(bias.perturbed, SEMANTIC_FACTORS))
        biases[key] = (bias, setting_label(selected, perturbed))
    rows = []
    for seed in seeds:
        run = run_scene_sweeps(profile, seed, progress=progress,
                               settings={"heldout": {k: b for k, (b, _) in biases.items()}})
        for key, (bias, label) in biases.items():
            part = run.scores[run.scores["setting"] == key]
            rows.append(_summary(part, label, bias, seed))
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmcl_helpers.image_text.heldout``: print the held-out table and the pass count."""
    from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES

    parser = argparse.ArgumentParser(prog="python -m mmcl_helpers.image_text.heldout",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=sorted(IMAGE_TEXT_PROFILES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--tuning", action="store_true", help="score the tuning set instead")
    parser.add_argument("--first", type=int, default=None, help="only the first N settings (a quick look)")
    parser.add_argument("--out", default=None, help="also write the table as CSV here")
    args = parser.parse_args(argv)
    if args.first is not None and args.first < 1:
        parser.error(f"--first must be a positive integer; got {args.first}")
    if any(s < 0 for s in args.seeds):
        parser.error(f"--seeds must be non-negative integers; got {args.seeds}")
    settings = tuning_settings() if args.tuning else heldout_settings()
    settings = settings[: args.first] if args.first else settings
    table = heldout_table(settings, IMAGE_TEXT_PROFILES[args.profile], args.seeds)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    per_seed = table.groupby("seed")["passed"].agg(["sum", "count"])
    for seed, row in per_seed.iterrows():
        print(f"seed {seed}: {int(row['sum'])} of {int(row['count'])} settings pass "
              f"(learned >= {LEARNED_BAR}, omitted/perturbed <= {DISCARDED_BAR}, "
              f"image-specific <= {IMAGE_BAR})")
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
