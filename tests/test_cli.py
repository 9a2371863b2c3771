import os
import subprocess
import sys

import pandas as pd
import pytest

from mmcl_helpers.cli import main, parse_index_list, parse_seed_list
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


@pytest.mark.parametrize(
    "text,phrase",
    [("1_0", "cannot read '1_0'"), ("+3", "cannot read '+3'"), ("\uff13", "cannot read '\uff13'"),
     ("1,\u0663", "cannot read '\u0663'"), ("-1", "cannot read '-1'"), ("1.0", "cannot read '1.0'"),
     ("1-2-3", "cannot read '1-2-3'"), ("5-3", "runs backwards"), ("1-99999999999", "at most 10000")],
)
def test_parse_index_list_reads_plain_digits_only(text, phrase):
    with pytest.raises(InvalidIndexSetError) as err:
        parse_index_list(text)
    assert phrase in str(err.value)


def test_parse_seed_list_speaks_of_seeds():
    assert parse_seed_list("0-2,7") == [0, 1, 2, 7]
    with pytest.raises(InvalidIndexSetError, match="as a seed: use comma-separated non-negative"):
        parse_seed_list("a")


# Every command reads these variables; a value it cannot use is one error line naming the variable.
ENV_CASES = {
    "MMCL_DRY_RUN=maybe": ("MMCL_DRY_RUN", "maybe", "MMCL_DRY_RUN='maybe' is not understood"),
    "MMCL_PROFILE=turbo": ("MMCL_PROFILE", "turbo", "MMCL_PROFILE='turbo' is not a compute profile"),
    "MMCL_CACHE=perhaps": ("MMCL_CACHE", "perhaps", "MMCL_CACHE='perhaps' is not understood"),
    "MMCL_PROGRESS=off": ("MMCL_PROGRESS", "off", "MMCL_PROGRESS='off' is not understood"),
}
COMMANDS = {
    "simulate": ["simulate", "--selected", "1", "--n-semantic", "2", "--quiet"],
    "scenes": ["scenes", "--selected", "shape", "--quiet"],
    "sweep": ["sweep", "--out", "{out}"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(ENV_CASES))
def test_environment_variable_errors_are_one_line(command, case, tmp_path, monkeypatch, capsys):
    name, value, phrase = ENV_CASES[case]
    monkeypatch.setenv(name, value)
    out = tmp_path / "new"
    argv = [a.format(out=out) for a in COMMANDS[command]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and phrase in err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing left behind


@pytest.mark.parametrize("command", ["simulate", "scenes"])
def test_unusable_cache_folder_is_one_line_before_any_work(command, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MMCL_CACHE_DIR", str(blocker))
    assert main(COMMANDS[command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err and "MMCL_CACHE_DIR" in err


@pytest.mark.parametrize("command", ["simulate", "scenes"])
def test_out_in_an_unwritable_folder_is_refused_before_any_work(command, capsys):
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs a folder nobody can write in (/proc)")
    assert main([*COMMANDS[command], "--out", "/proc/r.csv"]) == 2
    assert capsys.readouterr().err == "error: --out /proc/r.csv: the folder /proc is not writable.\n"
