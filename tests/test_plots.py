import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mmcl_helpers.core.plots import correlation_heatmap, score_heatmap, sweep_figure  # noqa: E402


def _grid(cols):
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.uniform(size=(4, cols)), index=["s1", "s2", "mx", "mt"],
                        columns=[f"[{i}]" for i in range(1, cols + 1)])


def test_wide_sweeps_stack_and_narrow_ones_sit_side_by_side():
    wide = sweep_figure([_grid(10), _grid(10)], ["ẑ_x", "ẑ_t"], suptitle="t")
    heatmaps = [ax for ax in wide.axes if ax.get_title() in ("ẑ_x", "ẑ_t")]
    assert len(heatmaps) == 2
    assert heatmaps[0].get_position().y0 > heatmaps[1].get_position().y1  # one above the other
    narrow = sweep_figure([_grid(3), _grid(3)], ["a", "b"])
    a, b = (ax for ax in narrow.axes if ax.get_title() in ("a", "b"))
    assert a.get_position().x1 < b.get_position().x0  # side by side


def test_heatmaps_label_factors_and_scale():
    ax = score_heatmap(_grid(3), title="R² grid", xlabel="selected")
    assert ax.get_title() == "R² grid" and ax.get_xlabel() == "selected"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["s1", "s2", "mx", "mt"]
    df = pd.DataFrame(np.random.default_rng(1).normal(size=(50, 3)), columns=["s1", "s2", "mx1"])
    ax = correlation_heatmap(df, title="corr")
    assert ax.collections[0].get_clim() == (-1.0, 1.0)
