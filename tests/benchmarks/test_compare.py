"""benchmarks/compare.py on small made-up reports: regressions flagged, improvements and unknowns not."""
import json

import pytest

from tests.benchmarks._load import load

compare = load("compare")

OLD = {"config": {"seconds": 40, "batch_size": 12},
       "training": {"tokens_per_s": 1000.0, "median_step_ms": 60.0, "val_loss": 2.0, "steps": 500},
       "accuracy": 0.99, "speedup_ratio": 1.5, "wall_s": 100.0, "losses": list(range(50))}


def write(path, data):
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("name, way", [
    ("training.tokens_per_s", "higher"), ("samples_per_s", "higher"), ("exact_match", "higher"),
    ("dates.accuracy", "higher"), ("speedup_ratio", "higher"), ("modes_covered", "higher"),
    ("training.vs_reference", "higher"), ("val_loss", "lower"), ("test_nelbo", "lower"), ("wall_s", "lower"),
    ("median_step_s.32-true", "lower"), ("lightning_overhead", "lower"), ("peak_memory_bytes", "lower"),
    ("steps", "unknown"), ("timed_steps", "unknown"), ("config.seconds", "unknown"), ("generation.rounds", "unknown"),
])
def test_direction_comes_from_the_name(name, way):
    assert compare.direction(name) == way


def test_regression_is_flagged_and_fails_with_the_option(tmp_path, capsys):
    new = json.loads(json.dumps(OLD))
    new["training"]["tokens_per_s"] = 800.0     # 20 % slower: regression
    new["training"]["val_loss"] = 1.8           # 10 % lower loss: improvement
    new["training"]["steps"] = 50               # unknown direction: no verdict
    new["config"]["seconds"] = 400              # a setting: no verdict
    old_file, new_file = write(tmp_path / "a.json", OLD), write(tmp_path / "b.json", new)
    rows = {r["figure"]: r for r in compare.compare(OLD, new, threshold=5)}
    assert rows["training.tokens_per_s"]["verdict"] == "REGRESSION"
    assert rows["training.tokens_per_s"]["change_pct"] == pytest.approx(-20)
    assert rows["training.val_loss"]["verdict"] == "better"
    assert rows["training.steps"]["verdict"] == "" and rows["config.seconds"]["verdict"] == ""
    assert rows["wall_s"]["verdict"] == "same"
    assert not any(f.startswith("losses") for f in rows)   # a 50-long trajectory is left out
    assert compare.main([str(old_file), str(new_file), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "1 regression(s)" in out and "(no verdict)" in out
    assert "2 setting(s) or unjudged figure(s) differ (config.seconds, training.steps)" in out
    assert compare.main([str(old_file), str(new_file)]) == 0   # without the option: report only


def test_improvements_and_small_changes_pass(tmp_path):
    new = json.loads(json.dumps(OLD))
    new["training"]["tokens_per_s"] = 1200.0
    new["wall_s"] = 103.0                       # 3 % worse: under the 5 % threshold
    new["accuracy"] = 1.0
    assert all(r["verdict"] != "REGRESSION" for r in compare.compare(OLD, new, threshold=5))
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir(), new_dir.mkdir()
    write(old_dir / "x.json", OLD), write(new_dir / "x.json", new), write(new_dir / "only_new.json", OLD)
    assert compare.main([str(old_dir), str(new_dir), "--fail-on-regression"]) == 0
    # a file against a folder uses the folder's file of the same name
    assert compare.main([str(old_dir / "x.json"), str(new_dir), "--fail-on-regression"]) == 0
    assert compare.main([str(old_dir / "x.json"), str(new_dir), "--threshold", "2", "--fail-on-regression"]) == 1


def test_missing_or_broken_file_is_a_clear_error(tmp_path, capsys):
    good = write(tmp_path / "a.json", OLD)
    assert compare.main([str(tmp_path / "nope.json"), str(good)]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err
    folder = tmp_path / "dir"
    folder.mkdir()
    assert compare.main([str(good), str(folder)]) == 2          # the folder has no a.json
    assert "a.json: no such file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert compare.main([str(tmp_path / "bad.json"), str(good)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
