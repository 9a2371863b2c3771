"""The second `make book`: executed notebooks are reused only when nothing they depend on changed."""

import json
from pathlib import Path

import pytest
import yaml

from mmcl_helpers.book_support.editions import EditionError, write_book_config
from mmcl_helpers.book_support.rebuild import CACHE_FOLDER, KEY_FILE, execution_key, main, prepare

ROOT = Path(__file__).resolve().parents[1]


def _filled_cache(build):
    cache = build / CACHE_FOLDER
    cache.mkdir(parents=True)
    (cache / "global.db").write_text("executed outputs")
    return cache


def test_key_sees_profile_and_settings_but_not_other_variables():
    base = execution_key("smoke", {"MMCL_CACHE_DIR": "/a", "HOME": "/x"})
    assert base == execution_key("smoke", {"MMCL_CACHE_DIR": "/a", "HOME": "/y"})
    assert base != execution_key("cpu", {"MMCL_CACHE_DIR": "/a"})
    assert base != execution_key("smoke", {"MMCL_CACHE_DIR": "/b"})
    assert base != execution_key("smoke", {"MMCL_CACHE_DIR": "/a", "MMCL_DRY_RUN": "1"})
    assert base["settings"]["MMCL_PROFILE"] == "smoke" and len(base["package"]) == 16


def test_first_build_starts_fresh_and_the_same_conditions_reuse(tmp_path):
    key = execution_key("smoke", {})
    cache = _filled_cache(tmp_path)
    reuse, why = prepare(tmp_path, key)
    assert not reuse and "no earlier build" in why and not cache.exists()
    assert json.loads((tmp_path / KEY_FILE).read_text()) == key
    cache = _filled_cache(tmp_path)
    reuse, why = prepare(tmp_path, key)
    assert reuse and "same package" in why and (cache / "global.db").exists()


def test_a_changed_condition_empties_the_cache_and_names_what_changed(tmp_path):
    prepare(tmp_path, execution_key("smoke", {}))
    cache = _filled_cache(tmp_path)
    changed = dict(execution_key("smoke", {}), package="0" * 16)
    reuse, why = prepare(tmp_path, changed)
    assert not reuse and "package" in why and "settings" not in why and not cache.exists()
    cache = _filled_cache(tmp_path)
    reuse, why = prepare(tmp_path, execution_key("cpu", {}))
    assert not reuse and "settings" in why and not cache.exists()


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", ""])
def test_a_damaged_record_is_a_miss(tmp_path, damage):
    key = execution_key("smoke", {})
    prepare(tmp_path, key)
    (tmp_path / KEY_FILE).write_text(damage)
    cache = _filled_cache(tmp_path)
    reuse, why = prepare(tmp_path, key)
    assert not reuse and "unreadable" in why and not cache.exists()
    assert prepare(tmp_path, key)[0]  # the record is rewritten


def test_command_refuses_an_unknown_profile(capsys):
    with pytest.raises(SystemExit):
        main(["--profile", "fast"])
    err = capsys.readouterr().err
    assert "--profile must be one of" in err and "'fast'" in err


def test_book_config_sets_the_execution_mode(tmp_path):
    out = tmp_path / "c.yml"
    write_book_config(ROOT, out, execute_notebooks="cache")
    assert yaml.safe_load(out.read_text())["execute"]["execute_notebooks"] == "cache"
    with pytest.raises(EditionError, match="execute_notebooks must be"):
        write_book_config(ROOT, out, execute_notebooks="sometimes")
