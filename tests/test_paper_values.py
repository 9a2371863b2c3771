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
    # Table 5: selected [8], perturbed [2]; one value per factor s1..s10, m_x, m_t.
    for kind in ("independent", "dependent"):
        row = TABLE5_LINEAR_ZX[kind]
        assert len(row) == 12 and all(0.0 <= v <= 1.0 for v in row)
        assert min(row[2:8]) >= 0.95  # s3..s8 are selected and unperturbed: recovered
        assert row[10:] == [0.0, 0.0]  # m_x, m_t are never recovered
    assert max(TABLE5_LINEAR_ZX["independent"][:2] + TABLE5_LINEAR_ZX["independent"][8:]) <= 0.01
    # With dependent semantics the discarded s1, s2, s9, s10 keep what their correlates explain.
    assert min(TABLE5_LINEAR_ZX["dependent"][i] for i in (0, 1, 8, 9)) >= 0.5


def test_comparison_table():
    ours = pd.DataFrame({"factor": ["s1", "s2"], "ours": [0.9, 0.1]})
    paper = pd.DataFrame({"factor": ["s1", "s2"], "paper": [1.0, 0.0]})
    t = comparison_table(ours, paper, ["factor"], "cpu")
    assert list(t.columns) == ["factor", "paper", "ours", "difference", "profile"]
    assert t["difference"].round(2).tolist() == [-0.1, 0.1]
