"""Clinical vs generic mode: no silent fallback, no outcome columns as covariates, generic bundles predict."""

import json

import numpy as np
import pandas as pd
import pytest
from _cli import run_cli

import carrisk
from carrisk.datasets import load_survival_data
from carrisk.features import FeatureSpec, looks_like_outcome
from carrisk.schema import RecordError


@pytest.fixture(scope="module")
def cohort_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    carrisk.simulate_cohort(n=160, seed=3).records.to_csv(path, index=False)
    return path


def test_a_misspelled_record_column_is_an_error_not_a_switch_to_generic_mode(tmp_path, cohort_csv):
    table = pd.read_csv(cohort_csv, dtype=str).rename(columns={"cd19_expression": "cd19_expresion"})
    table.to_csv(tmp_path / "typo.csv", index=False)
    result = run_cli("cv", tmp_path / "typo.csv", "--models", "coxph", "--folds", "2", "--repeats", "1", "--quiet")
    assert result.exit_code == 1, result.output
    assert "'cd19_expression'" in result.output and "did you mean the column 'cd19_expresion'" in result.output
    assert "generic" not in result.output and "harrell" not in result.output
    with pytest.raises(RecordError, match="did you mean"):
        load_survival_data(table)


def test_a_table_that_is_not_records_needs_generic_mode_named_explicitly(tmp_path):
    table = carrisk.load_public_dataset("gbsg2").head(100)
    with pytest.raises(RecordError, match="--time-col and --event-col"):
        load_survival_data(table)
    assert load_survival_data(table, time_col="time", event_col="event").mode == "generic"
    with pytest.raises(ValueError, match="generic mode only"):
        load_survival_data(table, features=["age"])


def test_generic_mode_never_uses_outcome_columns_unless_named():
    records = carrisk.simulate_cohort(n=160, seed=3, messy=False).records
    data = load_survival_data(records, time_col="efs_days", event_col="efs_event")
    used = set(data.spec.input_columns)
    assert not used & {"os_days", "death", "day28_cr", "relapse_phenotype", "efs_days", "efs_event"}
    assert {"age_years", "prior_relapses", "cd19_expression"} <= used
    assert any("os_days" in note for note in data.spec.notes)
    named = load_survival_data(records, time_col="efs_days", event_col="efs_event", features=["age_years", "os_days"])
    assert named.spec.input_columns == ("age_years", "os_days")


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("os_days", True),
        ("death", True),
        ("day28_cr", True),
        ("relapse_phenotype", True),
        ("time_to_relapse", True),
        ("OS.months", True),
        ("censored", True),
        ("vital_status", True),
        ("prior_relapses", False),
        ("months_since_last_hsct", False),
        ("tsize", False),
        ("cd4", False),
        ("pnodes", False),
    ],
)
def test_outcome_like_column_names(name, outcome):
    assert looks_like_outcome(name) is outcome


def test_cv_json_and_bundle_manifest_record_the_mode_and_exact_features(tmp_path, cohort_csv):
    table = carrisk.load_public_dataset("gbsg2").sample(200, random_state=0)
    table.to_csv(tmp_path / "g.csv", index=False)
    args = ["--time-col", "time", "--event-col", "event", "--features", "age,pnodes,tgrade"]
    result = run_cli(
        "cv", tmp_path / "g.csv", "--models", "coxph", "--folds", "2", "--repeats", "1", "--quiet", "--n-jobs", "1",
        "--json", tmp_path / "cv.json", *args,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = json.loads((tmp_path / "cv.json").read_text())["data"]["feature_spec"]
    assert spec["mode"] == "generic" and spec["features"] == ["age", "pnodes", "tgrade"]
    result = run_cli("train", tmp_path / "g.csv", "--model", "coxph", "--out", tmp_path / "m", *args)
    assert result.exit_code == 0, result.output
    manifest = carrisk.read_manifest(tmp_path / "m")["model"]
    assert manifest["mode"] == "generic" and manifest["features"] == ["age", "pnodes", "tgrade"]


@pytest.fixture(scope="module")
def generic_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("generic")
    table = carrisk.load_public_dataset("gbsg2")
    table.iloc[:500].to_csv(root / "train.csv", index=False)
    table.iloc[500:].drop(columns=["time", "event"]).to_csv(root / "new.csv", index=False)
    result = run_cli(
        "train", root / "train.csv", "--time-col", "time", "--event-col", "event", "--model", "coxph",
        "--out", root / "m",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root


def test_a_generic_mode_bundle_predicts_new_rows_with_its_own_feature_spec(generic_bundle):
    root = generic_bundle
    result = run_cli("predict", root / "new.csv", "--model", root / "m", "--out", root / "p.csv")
    assert result.exit_code == 0, result.output
    predicted = pd.read_csv(root / "p.csv")
    new = pd.read_csv(root / "new.csv")
    assert len(predicted) == len(new) and predicted["efs_6mo"].between(0, 1).all()
    model = carrisk.load_model(root / "m")
    table = model.predict_efs(new)
    np.testing.assert_allclose(table["efs_12mo"].to_numpy(), predicted["efs_12mo"].to_numpy(), rtol=0, atol=1e-12)


def test_generic_mode_prediction_validates_columns_numbers_and_levels(generic_bundle):
    root = generic_bundle
    model = carrisk.load_model(root / "m")
    new = pd.read_csv(root / "new.csv", dtype=str)
    bad = new.head(5).copy()
    bad.loc[0, "age"] = "inf"
    bad.loc[1, "tgrade"] = "IV"
    bad.loc[2, "pnodes"] = "many"
    with pytest.raises(RecordError) as err:
        model.predict_efs(bad)
    problems = {(p.row, p.column) for p in err.value.problems}
    assert problems == {(1, "age"), (2, "tgrade"), (3, "pnodes")}
    assert "training levels" in str(err.value)
    with pytest.raises(RecordError, match="tsize"):
        model.predict_efs(new.drop(columns=["tsize"]))
    kept = model.predict_efs(bad, skip_invalid=True)
    assert len(kept) == 2
    bad.to_csv(root / "bad.csv", index=False)
    assert run_cli("predict", root / "bad.csv", "--model", root / "m").exit_code == 1


def test_clinical_records_give_the_clinical_spec_and_record_it():
    data = load_survival_data(carrisk.simulate_cohort(n=60, seed=1).records)
    assert data.mode == "clinical" and data.spec == FeatureSpec()
    assert FeatureSpec().describe()["mode"] == "clinical"
