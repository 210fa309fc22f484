"""The command line as a user runs it: simulate, reproduce, train, version."""

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
