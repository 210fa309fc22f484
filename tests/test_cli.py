"""The command line as a user runs it: simulate, reproduce, train, version."""

import io
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import carrisk
from carrisk.cli import app

runner = CliRunner()


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and carrisk.__version__ in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "simulate", "reproduce", "cv", "train", "predict", "explain", "demo"):
        assert command in result.output


def test_simulate_writes_schema_valid_records_and_truth(tmp_path):
    out, truth = tmp_path / "c.csv", tmp_path / "t.csv"
    result = runner.invoke(app, ["simulate", "--n", "60", "--seed", "3", "--out", str(out), "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["validate", str(out), "--outcomes", "required"]).exit_code == 0
    table = pd.read_csv(truth)
    assert len(table) == 60 and {"patient_id", "true_cr_prob", "true_efs_6mo", "true_efs_12mo", "true_risk"} <= set(
        table.columns
    )
    again = tmp_path / "again.csv"
    runner.invoke(app, ["simulate", "--n", "60", "--seed", "3", "--out", str(again)])
    assert out.read_text() == again.read_text()


def test_reproduce_prints_the_abstract_and_writes_files(tmp_path):
    cohort = tmp_path / "c.csv"
    carrisk.simulate_cohort(n=420, seed=7).records.to_csv(cohort, index=False)
    result = runner.invoke(app, ["reproduce", str(cohort), "--out", str(tmp_path / "study")])
    assert result.exit_code == 0, result.output
    assert "6-month EFS" in result.output and "nonresponders" in result.output
    doc = json.loads((tmp_path / "study" / "study_report.json").read_text())
    assert doc and (tmp_path / "study" / "km_efs_by_blina.png").stat().st_size > 1000


@pytest.mark.slow
def test_train_in_generic_mode_saves_a_loadable_bundle(tmp_path):
    data = tmp_path / "whas.csv"
    carrisk.load_public_dataset("whas500").to_csv(data, index=False)
    out = tmp_path / "model"
    result = runner.invoke(
        app, ["train", str(data), "--model", "coxnet", "--time-col", "time", "--event-col", "event", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    model = carrisk.load_model(out)
    assert model.model_name == "coxnet" and set(model.params) == {"l1_ratio", "alpha_ratio"}
    assert carrisk.read_manifest(out)["model"]["training_data"]["rows"] == 500


def test_train_rejects_invalid_records_listing_problems(tmp_path, example_records):
    bad = example_records.copy()
    bad.loc[0, "efs_event"] = "2"
    bad.loc[3, "efs_days"] = "-1"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    result = runner.invoke(app, ["train", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert "efs_event" in result.output and "efs_days" in result.output
    assert not (tmp_path / "m").exists()


def test_external_centre_evaluate_and_update_from_the_command_line(tmp_path):
    centre, other = tmp_path / "centre.csv", tmp_path / "other.csv"
    result = runner.invoke(app, ["simulate", "--n", "200", "--seed", "4", "--centre", "shifted", "--out", str(centre)])
    assert result.exit_code == 0, result.output
    runner.invoke(app, ["simulate", "--n", "150", "--seed", "5", "--centre", "shifted", "--out", str(other)])
    updated = tmp_path / "updated"
    result = runner.invoke(app, ["update", str(centre), "--out", str(updated), "--level", "recalibration_in_the_large"])
    assert result.exit_code == 0, result.output
    assert "Closed test" in result.output and "before:" in result.output and "after:" in result.output
    assert carrisk.read_manifest(updated)["model"]["update"]["level"] == "recalibration_in_the_large"
    out = tmp_path / "evaluation"
    result = runner.invoke(
        app,
        ["evaluate", str(other), "--model", str(updated), "--out", str(out), "--n-bootstrap", "10",
         "--n-bootstrap-calibration", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Harrell's C" in result.output
    assert (out / "report.html").stat().st_size > 10_000 and (out / "summary.csv").exists()
    assert json.loads((out / "evaluation.json").read_text())["info"]["model"]["update"]["level"]


def test_simulate_centre_presets_and_effect_scale_from_the_command_line(tmp_path):
    from carrisk.simulate import EXTERNAL_CENTRES

    preset, scaled = tmp_path / "preset.csv", tmp_path / "scaled.csv"
    args = ["simulate", "--n", "40", "--seed", "6"]
    assert runner.invoke(app, [*args, "--centre", "baseline_and_effects", "--out", str(preset)]).exit_code == 0
    expected = carrisk.simulate_cohort(40, seed=6, **EXTERNAL_CENTRES["baseline_and_effects"]).records
    pd.testing.assert_frame_equal(pd.read_csv(preset), pd.read_csv(io.StringIO(expected.to_csv(index=False))))
    preset_args = [*args, "--centre", "baseline_and_effects"]
    result = runner.invoke(app, [*preset_args, "--effect-scale", "1", "--out", str(scaled)])
    assert result.exit_code == 0, result.output
    expected = carrisk.simulate_cohort(40, seed=6, baseline_hazard_multiplier=1.8).records
    pd.testing.assert_frame_equal(pd.read_csv(scaled), pd.read_csv(io.StringIO(expected.to_csv(index=False))))
    result = runner.invoke(app, [*args, "--effect-scale", "-1", "--out", str(scaled)])
    assert result.exit_code == 2 and "effect_scale must be a non-negative" in result.output


def test_evaluate_and_update_refuse_bad_input_in_one_clear_line(tmp_path):
    no_outcomes = tmp_path / "no_outcomes.csv"
    carrisk.simulate_cohort(30, seed=1).records.drop(columns=["efs_days"]).to_csv(no_outcomes, index=False)
    for command in (["evaluate", str(no_outcomes), "--out", str(tmp_path / "e")],
                    ["update", str(no_outcomes), "--out", str(tmp_path / "u")]):  # fmt: skip
        result = runner.invoke(app, command)
        assert result.exit_code == 1 and "efs_days" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["simulate", "--centre", "moon", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "--centre must be one of" in result.output


def test_predict_top_zero_skips_the_reasons_and_keeps_the_numbers(tmp_path):
    from pathlib import Path

    example = Path(carrisk.__file__).parent / "data" / "example_patients.csv"
    with_reasons, without = tmp_path / "with.json", tmp_path / "without.json"
    assert runner.invoke(app, ["predict", str(example), "--json", str(with_reasons)]).exit_code == 0
    assert runner.invoke(app, ["predict", str(example), "--top", "0", "--json", str(without)]).exit_code == 0
    full, bare = json.loads(with_reasons.read_text()), json.loads(without.read_text())
    assert all(len(row["top_reasons"]) == 3 for row in full)
    assert all(row["top_reasons"] == [] for row in bare)
    assert [row["efs_6mo"] for row in bare] == [row["efs_6mo"] for row in full]
    assert runner.invoke(app, ["predict", str(example), "--top", "-1"]).exit_code == 2


def test_the_command_line_starts_without_importing_the_numeric_stack():
    """``carrisk --version`` and ``--help`` used to import numpy, pandas, scikit-learn and pandera (1.8 s)."""
    import subprocess
    import sys

    code = (
        "import sys; from carrisk.cli import app\n"
        "try:\n    app(['--version'], prog_name='carrisk')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'sklearn', 'pandera', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [f"carrisk {carrisk.__version__}", "[]"], done.stdout + done.stderr
