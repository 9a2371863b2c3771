import subprocess
import sys

import pandas as pd
import pytest

from mmcl_helpers.cli import main, parse_index_list
from mmcl_helpers.core.biases import InvalidIndexSetError


def test_parse_index_list():
    assert parse_index_list("1,2,3") == [1, 2, 3]
    assert parse_index_list("1-3,7") == [1, 2, 3, 7]
    assert parse_index_list("") == []
    with pytest.raises(InvalidIndexSetError, match="cannot read 'a'"):
        parse_index_list("1,a")


def test_simulate_writes_the_long_table(tmp_path, capsys):
    out = tmp_path / "r.csv"
    rc = main(["simulate", "--selected", "1,2", "--perturbed", "2", "--n-semantic", "3",
               "--n-modality", "2", "--profile", "smoke", "--steps", "20", "--seed", "1",
               "--quiet", "--out", str(out)])
    assert rc == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["encoder", "factor", "probe", "metric", "score"]
    assert len(df) == 2 * 2 * 5
    assert set(df["factor"]) == {"s1", "s2", "s3", "mx", "mt"}
    printed = capsys.readouterr().out
    for factor in ("s1", "s3", "mx", "mt"):
        assert factor in printed
    assert "linear" in printed and "mlp" in printed


@pytest.mark.parametrize(
    "args,message",
    [
        (["--selected", "", "--perturbed", ""], "empty"),
        (["--selected", "1,2", "--perturbed", "3"], "does not select"),
        (["--selected", "1,12"], "outside the allowed range"),
        (["--selected", "1", "--profile", "turbo"], "Unknown compute profile"),
    ],
)
def test_simulate_rejects_bad_input(args, message, capsys):
    assert main(["simulate", *args]) == 2
    assert message in capsys.readouterr().err


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "mmcl_helpers", "simulate", "--help"],
                          capture_output=True, text=True, check=True)
    assert "--selected" in proc.stdout and "--encoding-size" in proc.stdout
