import pandas as pd
import pytest

from mmcl_helpers.core.paper import (
    TABLE4_LINEAR_ZX,
    TABLE5_LINEAR_ZX,
    compare_to_fig10,
    comparison_table,
    figure_values,
)


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


def test_table4_cells_span_the_papers_range():
    ind = TABLE4_LINEAR_ZX["independent"]
    assert len(ind) == len(TABLE4_LINEAR_ZX["dependent"]) == 12
    # s4..s10: the paper's range 0.01-0.04, cell by cell, not one value repeated.
    assert min(ind[3:10]) == 0.01 and max(ind[3:10]) == 0.04


def test_comparison_table():
    ours = pd.DataFrame({"factor": ["s1", "s2"], "ours": [0.9, 0.1]})
    paper = pd.DataFrame({"factor": ["s1", "s2"], "paper": [1.0, 0.0]})
    t = comparison_table(ours, paper, ["factor"], "cpu")
    assert list(t.columns) == ["factor", "paper", "ours", "difference", "profile"]
    assert t["difference"].round(2).tolist() == [-0.1, 0.1]


def test_fig10_values():
    fig10 = figure_values("fig10")
    assert set(fig10["panel"]) == {"independent_zx", "dependent_zx"}
    assert set(fig10["task"]) == {"y1", "y2", "y3", "y4", "class_id", "class_ood"}
    assert len(fig10) == 2 * 6 * 10
    ind = fig10[fig10["panel"] == "independent_zx"].set_index(["task", "column"])["value"]
    # Read off the paper's plot: y1 = F(s_[3]) is lost once s1 or more of [3] is perturbed, and
    # with nothing perturbed every target is predictable.
    assert ind[("y1", "[3]")] == 0.0 and ind[("y1", "∅")] > 0.9
    assert ind[("class_id", "∅")] > ind[("class_ood", "∅")]


def test_compare_to_fig10():
    rows = []
    for seed, bump in [(0, 0.0), (1, 0.2)]:
        rows += [(seed, "[9]", "y1", "id", 0.1 + bump), (seed, "∅", "class", "id", 0.5 + bump),
                 (seed, "∅", "class", "ood", 0.3), (seed, "{2,5}", "y1", "id", 0.5)]
    ours = pd.DataFrame(rows, columns=["seed", "perturbed", "task", "split", "score"])
    t = compare_to_fig10(ours, dependent=False, profile="cpu").set_index(["task", "column"])
    assert len(t) == 3  # {2,5} is not a column of Fig. 10
    assert t.loc[("y1", "[9]"), "ours"] == pytest.approx(0.2)
    assert t.loc[("y1", "[9]"), "ours_sd"] == pytest.approx(0.1)
    assert t.loc[("class_id", "∅"), "paper"] == pytest.approx(0.81)
    assert t.loc[("class_ood", "∅"), "difference"] == pytest.approx(0.3 - 0.51)
    with pytest.raises(ValueError, match="perturbed"):
        compare_to_fig10(ours.drop(columns="perturbed"), dependent=False, profile="cpu")
