import pandas as pd
import pytest

from mmcl_helpers.paper import TABLE5_LINEAR_ZX, comparison_table, figure_values


def test_figure_values_shapes():
    fig3 = figure_values("fig3")
    assert set(fig3["panel"]) == {"independent_zx", "independent_zt", "dependent_zx",
                                  "dependent_zt"}
    assert len(fig3) == 4 * 12 * 10
    cell = fig3.query("panel == 'independent_zx' and factor == 's3' and column == '[3]'")
    assert cell["value"].item() == 1.0
    assert len(figure_values("fig7")["column"].unique()) == 10
    with pytest.raises(ValueError, match="fig3"):
        figure_values("fig99")


def test_table5_rows():
    assert len(TABLE5_LINEAR_ZX["independent"]) == 12


def test_comparison_table():
    ours = pd.DataFrame({"factor": ["s1", "s2"], "ours": [0.9, 0.1]})
    paper = pd.DataFrame({"factor": ["s1", "s2"], "paper": [1.0, 0.0]})
    t = comparison_table(ours, paper, ["factor"], "cpu")
    assert list(t.columns) == ["factor", "paper", "ours", "difference", "profile"]
    assert t["difference"].round(2).tolist() == [-0.1, 0.1]
