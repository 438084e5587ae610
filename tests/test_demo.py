"""genlab demo: which models take part, the overrides of a demo run, the tables, the labs
it grades and its command line. Fast: nothing here trains or grades."""
import json
import subprocess
import sys

import pytest

from genlab import training
from genlab.cli import FIT_MODELS, build_parser
from genlab.demo import grade, summary, train

TRAIN_ROW = {"model": "vae", "steps_planned": 1500, "steps_done": 1500, "wall_s": 21.34, "cpu_s": 30.1,
             "parameters": 99908, "metrics": {"val_nelbo": 21.456, "val_kl": 3.2}, "run_dir": "vae/version_0",
             "figures": ["vae/version_0/figures/latent_grid.png"], "stopped_by_time": False}


def test_every_registered_model_is_in_the_demo_with_metrics_it_logs():
    models = train.demo_models()
    assert set(models) == set(training.registry())
    for name, entry in models.items():
        assert entry.model_class.demo_steps >= 1, name
        assert entry.model_class.demo_metrics, f"{name} declares no demo_metrics"


def test_fit_help_lists_every_registered_model():
    assert set(FIT_MODELS) == set(training.registry())


def test_select_models_keeps_the_order_given_and_names_the_choices():
    available = {"gpt": None, "vae": None, "gan": None}
    assert train.select_models(None, available) == ["gpt", "vae", "gan"]
    assert train.select_models(["vae", "gpt", "vae"], available) == ["vae", "gpt"]
    with pytest.raises(ValueError, match="not a demo model: nope; choose from gpt, vae, gan"):
        train.select_models(["nope"], available)


def test_trainer_args_set_the_schedule_the_folder_and_the_time_cap(tmp_path):
    args = train.trainer_args(400, tmp_path, max_seconds=75)
    assert "--trainer.max_steps=400" in args and "--trainer.val_check_interval=200" in args
    assert f"--trainer.logger.init_args.save_dir={tmp_path}" in args
    assert "--trainer.max_time=00:00:01:15" in args
    assert not any("max_time" in a for a in train.trainer_args(1, tmp_path))
    assert "--trainer.val_check_interval=1" in train.trainer_args(1, tmp_path)
    with pytest.raises(ValueError, match="at least 1"):
        train.trainer_args(0, tmp_path)
    with pytest.raises(ValueError, match="positive"):
        train.trainer_args(10, tmp_path, max_seconds=0)


def test_training_table_has_metric_times_and_parameters():
    capped = {**TRAIN_ROW, "model": "gan", "steps_done": 900, "stopped_by_time": True}
    table = summary.training_table([TRAIN_ROW, capped]).splitlines()
    assert [c.strip() for c in table[0].split("|")[1:-1]] == ["model", "steps", "metric reached", "wall time",
                                                              "CPU time", "parameters"]
    assert len({len(line) for line in table}) == 1  # padded columns
    assert "val_nelbo 21.46, val_kl 3.2" in table[2] and "21.3 s" in table[2] and "99,908" in table[2]
    assert "900/1500 (time cap)" in table[3]


def _grade(lab, student, score, max_score=100.0, expected=None, **extra):
    g = grade.GradeResult(lab, student, score, max_score, f"grades/{lab}/{student}/feedback.md", expected, **extra)
    return g.as_dict()


def test_grading_table_marks_what_scored_as_expected():
    grades = [_grade("03_transformer", "solution", 100, expected="full"),
              _grade("03_transformer", "release", 0, expected="zero"),
              _grade("03_transformer", "example", 72),
              _grade("04_vae", "solution", 50, 56, expected="full"),
              _grade("04_vae", "release", None, None, expected="zero")]
    lines = summary.grading_table(grades, {"03_transformer": 14.26, "04_vae": 9}).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["lab", "solution", "release", "example", "time"]
    assert [c.strip() for c in lines[2].split("|")[1:-1]] == ["03_transformer", "100/100 ✓", "0/100 ✓", "72/100",
                                                             "14.3 s"]
    assert [c.strip() for c in lines[3].split("|")[1:-1]] == ["04_vae", "50/56 ✗ unexpected", "error", "-", "9.0 s"]


def test_as_expected_follows_the_kind_of_notebook():
    assert grade.GradeResult("l", "solution", 10, 10, None, "full").as_expected
    assert not grade.GradeResult("l", "solution", 9, 10, None, "full").as_expected
    assert not grade.GradeResult("l", "release", 1, 10, None, "zero").as_expected
    assert grade.GradeResult("l", "example", 3, 10, None, None).as_expected
    assert not grade.GradeResult("l", "example", None, None, None, None).as_expected  # never graded


def test_summary_files_hold_both_tables(tmp_path):
    data = {"command": "genlab demo", "training": [TRAIN_ROW],
            "grading": [_grade("05_gan", "solution", 45, 45, expected="full")],
            "grading_seconds": {"05_gan": 3.0}, "total_seconds": 400.0}
    json_path, md_path = summary.write_summary(tmp_path, data)
    assert json.loads(json_path.read_text(encoding="utf-8")) == data
    md = md_path.read_text(encoding="utf-8")
    assert "## Training" in md and "## Grading" in md and "| 05_gan | 45/45 ✓  " in md and "Total: 400 s" in md
    assert summary.read_summary(tmp_path) == data
    with pytest.raises(FileNotFoundError, match="run `genlab demo"):
        summary.read_summary(tmp_path / "none")


def test_find_labs_pairs_every_solution_with_its_release_and_the_example():
    labs = {lab.name: lab for lab in grade.find_labs()}
    assert set(labs) == {"00_precision", "01_rnn", "02_seq2seq", "03_transformer", "04_vae", "05_gan"}
    for lab in labs.values():
        assert lab.notebooks["solution"].is_file() and lab.notebooks["release"].is_file(), lab.name
        assert lab.notebooks["solution"].parent.parent.name == "solutions"
        assert lab.notebooks["release"].parent.parent.name == "labs"
    assert labs["03_transformer"].notebooks["example"].is_file()
    assert [lab.name for lab in grade.find_labs(labs=["04_vae"])] == ["04_vae"]
    with pytest.raises(ValueError, match="unknown lab 99_x; labs: 00_precision"):
        grade.find_labs(labs=["99_x"])


def test_find_labs_without_an_autograder_says_to_skip_grading(tmp_path):
    with pytest.raises(FileNotFoundError, match="--no-grade"):
        grade.find_labs(tmp_path)


def test_failed_tests_reads_the_graders_result(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"tests": [
        {"name": "a::ok", "points": 2, "score": 2, "status": "passed", "message": ""},
        {"name": "a::bad", "points": 3, "score": 0, "status": "failed", "message": "use tril()"}]}), encoding="utf-8")
    assert grade.failed_tests(tmp_path / "result.json") == [
        {"name": "a::bad", "score": 0, "points": 3, "message": "use tril()"}]
    assert grade.failed_tests(tmp_path / "missing.json") == []


def test_example_submission_carries_its_planted_bugs():
    import nbformat

    notebook = grade.repo_root() / "examples/submissions/03_transformer/transformer.ipynb"
    source = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    assert "masked_fill(~mask, -1e9)" in source and ".tril(-1)" in source
    assert "return x.reshape(B, T, H * d_head)" in source
    assert "NotImplementedError()" not in source and "BEGIN SOLUTION" not in source


def test_demo_options_parse():
    ns = build_parser().parse_args(["demo", "--models", "vae", "gan", "--no-grade", "--max-seconds", "0",
                                    "--out", "x"])
    assert ns.models == ["vae", "gan"] and ns.no_grade and not ns.no_train and ns.max_seconds == 0
    assert ns.jobs == 2 and ns.out == "x"


def test_demo_help_describes_what_it_writes():
    out = subprocess.run([sys.executable, "-m", "genlab", "demo", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "index.html" in out and "--models" in out and "--no-grade" in out and "--max-seconds" in out


def test_unknown_demo_model_is_one_clear_line(capsys):
    from genlab.cli import main

    assert main(["demo", "--models", "nope", "--no-grade", "--out", "/nonexistent/never"]) == 2
    assert "genlab demo: error: not a demo model: nope; choose from gan" in capsys.readouterr().err


def test_demo_end_to_end_on_one_tiny_model(tmp_path, capsys):
    """The whole path on a tiny setting: training, figures, tables, page (grading left out)."""
    from genlab.demo import run_demo

    assert run_demo(out=tmp_path, steps=2, models=["vae"], grade=False, max_seconds=60) == 0
    data = summary.read_summary(tmp_path)
    (row,) = data["training"]
    assert row["model"] == "vae" and row["steps_done"] == 2 and row["parameters"] > 0
    assert set(row["metrics"]) == {"val_nelbo", "val_kl"}
    assert "vae/version_0/figures/latent_grid.png" in row["figures"]
    assert all((tmp_path / f).is_file() for f in row["figures"])
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert all(f'src="{f}"' in html for f in row["figures"] if f.endswith(".png"))
    assert "| vae " in (tmp_path / "summary.md").read_text(encoding="utf-8")
    out = capsys.readouterr().out
    assert "training summary" in out and "Page: " in out


def test_page_only_redraws_the_page_from_the_summary(tmp_path, capsys):
    from genlab.cli import main

    summary.write_summary(tmp_path, {"training": [TRAIN_ROW], "grading": [], "grading_seconds": {}})
    assert main(["demo", "--page-only", "--out", str(tmp_path)]) == 0
    assert "missing: vae/version_0/figures/latent_grid.png" in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert main(["demo", "--page-only", "--out", str(tmp_path / "none")]) == 2
    assert "run `genlab demo --out" in capsys.readouterr().err
