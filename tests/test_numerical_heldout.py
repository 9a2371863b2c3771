"""Held-out seeds for the numerical recipe: seeds apart from the book's, checks that can fail."""

import pandas as pd
import pytest

from mmcl_helpers.core.profiles import PROFILES, profile_with_overrides
from mmcl_helpers.numerical import heldout as nh


def test_held_out_and_tuning_seeds_are_disjoint_and_above_every_book_seed():
    assert not set(nh.HELDOUT_SEEDS) & set(nh.TUNING_SEEDS)
    reported = {s for p in PROFILES.values() for s in nh.book_seeds(p)}
    assert reported == {0, 1, 2}
    assert not (set(nh.HELDOUT_SEEDS) | set(nh.TUNING_SEEDS)) & reported


def test_the_checks_follow_their_bars_and_name_the_seed():
    smoke = PROFILES["smoke"]
    table = nh.heldout_checks(smoke, [0, nh.TUNING_SEEDS[0]], studies=["dependent", "perturbation"])
    assert list(table.columns) == ["seed", "book_seed", "study", "check", "op", "bar", "value", "met"]
    # One dependent row and four perturbation bars per seed.
    assert table.groupby("seed").size().to_dict() == {0: 5, nh.TUNING_SEEDS[0]: 5}
    assert table.set_index("seed")["book_seed"].groupby(level=0).first().to_dict() == {
        0: True, nh.TUNING_SEEDS[0]: False}
    expected = [v >= b if op == ">=" else v <= b for op, b, v in zip(table.op, table.bar, table.value)]
    assert table["met"].tolist() == expected
    # At smoke (150 steps) the recipe is far from converged: some checks fail, so they can.
    assert not table["met"].all()
    assert table.query("study == 'perturbation'")["check"].str.split(" ").str[0].tolist()[:4] == [
        "unbiased", "perturbed", "image-specific", "text-specific"]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="studies"):
        nh.heldout_checks(PROFILES["smoke"], [3], studies=["everything"])
    with pytest.raises(ValueError, match="seeds"):
        nh.heldout_checks(PROFILES["smoke"], [-1])
    for argv in (["--seeds", "3", "--tuning"], ["--seeds", "-2"], ["--set", "steps=0"],
                 ["--set", "colour=1"], ["--profile", "huge"], ["--fewer-steps", "--set", "steps=10"]):
        with pytest.raises(SystemExit):
            nh.main(argv)


def test_a_candidate_numerical_recipe_is_a_checked_copy():
    cpu = PROFILES["cpu"]
    cand = profile_with_overrides(cpu, ["steps=8000", "lr=0.01"])
    assert (cand.steps, cand.lr, cand.batch_size) == (8000, 0.01, cpu.batch_size)
    assert profile_with_overrides(cpu, []) == cpu
    for bad, needle in (("steps", "FIELD=VALUE"), ("widths=[1]", "FIELD one of"),
                        ("lr=fast", "must be JSON"), ("steps=0", "steps")):
        with pytest.raises(ValueError, match=needle):
            profile_with_overrides(cpu, [bad])


def test_the_command_prints_the_table_and_the_count(capsys, tmp_path):
    out = tmp_path / "checks.csv"
    assert nh.main(["--profile", "smoke", "--seeds", "3", "--studies", "dependent", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "seed 3:" in printed and "checks met" in printed
    table = pd.read_csv(out)
    assert table["study"].tolist() == ["dependent"] and table["seed"].tolist() == [3]


def _fake_table():
    rows = []
    for seed in nh.HELDOUT_SEEDS:
        rows.append(dict(seed=seed, book_seed=False, study="selection", check="unbiased (worst, MLP, ẑ_x)",
                         op=">=", bar=0.8, value=0.9 if seed == nh.HELDOUT_SEEDS[0] else 0.31, met=seed == 5))
        rows.append(dict(seed=seed, book_seed=False, study="dependent", check="unbiased (worst, MLP, ẑ_x)",
                         op=">=", bar=0.8, value=0.85, met=True))
    return pd.DataFrame(rows)


def test_a_recorded_table_round_trips_and_knows_when_the_recipe_changed(tmp_path):
    cpu = PROFILES["cpu"]
    path = nh.write_record(_fake_table(), cpu, tmp_path / "rec.json")
    table, meta = nh.read_record(path)
    pd.testing.assert_frame_equal(table, _fake_table())
    assert meta["seeds"] == list(nh.HELDOUT_SEEDS) and meta["heldout_seeds"] == list(nh.HELDOUT_SEEDS)
    assert nh.record_is_current(meta, cpu)
    assert not nh.record_is_current(meta, profile_with_overrides(cpu, ["steps=8000"]))
    assert not nh.record_is_current({**meta, "heldout_seeds": [7, 8]}, cpu)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a held-out record"):
        nh.read_record(tmp_path / "bad.json")


def test_the_summary_counts_per_seed_and_names_each_missed_check():
    counts, missed = nh.summarize_record(_fake_table())
    assert counts == "at seed 5, 2 of 2 checks are met; at seed 6, 1 of 2 checks are met"
    assert missed == "Missed: at seed 6, selection unbiased 0.310 (bar >= 0.8)."
    assert nh.summarize_record(_fake_table().query("seed == 5"))[1] == "No check is missed."


def test_only_the_cpu_recipe_on_the_held_out_seeds_is_recorded():
    for argv in (["--record", "--seeds", "5"], ["--record", "--tuning"], ["--record", "--profile", "smoke"],
                 ["--record", "--studies", "dependent"], ["--record", "--set", "steps=10", "--tuning"]):
        with pytest.raises(SystemExit):
            nh.main(argv)


def test_a_candidate_s_record_lies_beside_today_s_and_names_its_changes(tmp_path, monkeypatch):
    assert nh.candidate_path(["steps=4000"]).name == "heldout_cpu_steps-4000.json"
    assert nh.candidate_path(["steps=4000"]).parent == nh.RECORD_PATH.parent
    assert nh.candidate_path(["lr=0.01", "steps=8000"]) == nh.candidate_path(["steps=8000", "lr=0.01"])
    for bad in ([], ["steps"]):
        with pytest.raises(ValueError, match="FIELD=VALUE"):
            nh.candidate_path(bad)
    # The command records a candidate in its own file, with its recipe and its changes.
    monkeypatch.setattr(nh, "RECORD_PATH", tmp_path / "heldout_cpu.json")
    seen = {}

    def fake_checks(profile, seeds, studies, device=None):
        seen["profile"] = profile
        return _fake_table()

    monkeypatch.setattr(nh, "heldout_checks", fake_checks)
    assert nh.main(["--record", "--set", "steps=10"]) == 0
    assert seen["profile"].steps == 10 and not nh.RECORD_PATH.exists()
    assert nh.main(["--fewer-steps"]) == 0
    assert seen["profile"] == profile_with_overrides(PROFILES["cpu"], nh.FEWER_STEPS)
    table, meta = nh.read_record(tmp_path / "heldout_cpu_steps-10.json")
    assert meta["overrides"] == ["steps=10"] and meta["profile"]["steps"] == 10
    assert nh.record_is_current(meta, overrides=["steps=10"])
    assert not nh.record_is_current(meta) and not nh.record_is_current(meta, overrides=["steps=20"])


def test_a_candidate_is_compared_check_by_check_with_today_s_recipe():
    today = _fake_table()
    same = nh.compare_records(today, today)
    assert same == ("Checks met: at seed 5, 2 of 2 (today's recipe: 2); at seed 6, 1 of 2 (today's "
                    "recipe: 1); it misses no check today's recipe meets.")
    worse = today.copy()
    worse.loc[(worse.seed == 5) & (worse.study == "dependent"), ["value", "met"]] = [0.5, False]
    text = nh.compare_records(today, worse)
    assert text.startswith("Checks met: at seed 5, 1 of 2 (today's recipe: 2)")
    assert text.endswith("It misses 1 that today's recipe meets: seed 5 dependent unbiased 0.500 "
                         "(today 0.850, bar >= 0.8).")
    with pytest.raises(ValueError, match="same seeds"):
        nh.compare_records(today, today.query("seed == 5"))


def test_the_recorded_table_is_today_s_cpu_recipe_on_the_held_out_seeds():
    # Chapter 2 quotes this record; a change to the cpu recipe must come with a new one
    # (make numerical-heldout), or the chapter says the table is stale.
    table, meta = nh.read_record()
    assert nh.record_is_current(meta)
    assert sorted(table["seed"].unique()) == list(nh.HELDOUT_SEEDS)
    assert sorted(table["study"].unique()) == sorted(nh.STUDIES)
    assert len(table) == 10 * len(nh.HELDOUT_SEEDS)


def test_dependent_columns_keep_every_kth_setting_and_the_last():
    from mmcl_helpers.numerical.experiments import dependent_columns, numerical_selection_sweep

    sweep = numerical_selection_sweep(10)
    assert [len(b.selected) for b in dependent_columns(sweep, 3)] == [1, 4, 7, 10]
    assert [len(b.selected) for b in dependent_columns(sweep, 4)] == [1, 5, 9, 10]
    assert dependent_columns(sweep, 1) == sweep
    with pytest.raises(ValueError, match="stride"):
        dependent_columns(sweep, 0)


def test_the_recorded_candidate_chapter_2_quotes_is_today_s_recipe_with_fewer_steps():
    # Chapter 2 compares this record with the one above, check by check.
    table, meta = nh.read_record(nh.candidate_path(nh.FEWER_STEPS))
    assert nh.record_is_current(meta, overrides=nh.FEWER_STEPS)
    assert meta["profile"]["steps"] < PROFILES["cpu"].steps
    assert sorted(table["seed"].unique()) == list(nh.HELDOUT_SEEDS)
    today, _ = nh.read_record()
    assert nh.compare_records(today, table).startswith("Checks met: at seed")
