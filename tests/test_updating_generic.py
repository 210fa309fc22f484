"""`carrisk evaluate` and `carrisk update` on generic-mode bundles (trained with --time-col/--event-col)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _cli import run_cli
from sksurv.nonparametric import kaplan_meier_estimator

import carrisk
from carrisk.evaluate import evaluate_model
from carrisk.updating import UpdatedModel, update_model


@pytest.fixture(scope="module")
def generic(tmp_path_factory):
    """A coxph bundle trained on the first 450 gbsg2 rows; the other 236 as a 'new centre' with outcomes."""
    root = tmp_path_factory.mktemp("generic_update")
    table = carrisk.load_public_dataset("gbsg2")
    table.iloc[:450].to_csv(root / "train.csv", index=False)
    table.iloc[450:].to_csv(root / "centre.csv", index=False)
    table.iloc[450:456].to_csv(root / "few.csv", index=False)
    table.iloc[450:].rename(columns={"time": "days", "event": "status"}).to_csv(root / "renamed.csv", index=False)
    result = run_cli(
        "train", root / "train.csv", "--time-col", "time", "--event-col", "event", "--model", "coxph",
        "--out", root / "model",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root


def test_evaluate_reads_a_generic_bundles_outcome_columns(generic):
    out = generic / "evaluation"
    result = run_cli(
        "evaluate", generic / "centre.csv", "--model", generic / "model", "--out", out, "--n-bootstrap", "5",
        "--n-bootstrap-calibration", "2", "--no-report",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads((out / "evaluation.json").read_text())["info"]
    assert info["n"] == 236 and info["outcome_columns"] == {"time": "time", "event": "event"}
    assert set(info["missing_share"]) == set(carrisk.read_manifest(generic / "model")["model"]["features"])
    # the same numbers as the Python function on the same table
    model = carrisk.load_model(generic / "model")
    direct = evaluate_model(
        model, carrisk.read_records(generic / "centre.csv"), n_bootstrap=5, n_bootstrap_calibration=2
    )
    summary = pd.read_csv(out / "summary.csv").set_index(["measure", "horizon"])
    assert summary.loc[("harrell_c", np.nan), "estimate"] == pytest.approx(direct.summary.iloc[0]["estimate"])


def test_evaluate_speaks_of_the_event_column_and_warns_of_nothing(generic):
    """A generic table's outcome is not EFS; and a bootstrap resample without an event by 6 months (90 events
    in 236 patients, few early) made sksurv's AUC divide 0 by 0 (RuntimeWarning); that resample's AUC is now
    left out of the interval like any undefined measure."""
    out = generic / "worded"
    result = run_cli(
        "evaluate", generic / "centre.csv", "--model", generic / "model", "--out", out, "--n-bootstrap", "5",
        "--n-bootstrap-calibration", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "236 patients, 90 events (column 'event')" in result.output
    assert "EFS" not in result.output
    # the one warning: fewer than the recommended 100 events, worded for the table's own event column
    (warning,) = [line for line in result.output.splitlines() if "warning" in line.lower()]
    assert "has 90 event(s) in 'event': about 100 events are recommended for external validation" in warning
    summary = pd.read_csv(out / "summary.csv").set_index(["measure", "horizon"])
    assert summary.loc[("auc", "6mo"), "interval"] == "bootstrap percentile (4 resamples)"
    assert summary.loc[("brier", "6mo"), "interval"] == "bootstrap percentile (5 resamples)"
    report = (out / "report.html").read_text()
    assert "External validation of a survival model" in report and "with an event (column &#x27;event&#x27;)" in report
    assert "EFS" not in report and "CAR T-cell" not in report and "blinatumomab" not in report


def test_outcome_columns_named_differently_need_time_col_and_event_col(generic):
    args = ("--model", generic / "model", "--n-bootstrap", "5", "--n-bootstrap-calibration", "2", "--no-report")
    missing = run_cli("evaluate", generic / "renamed.csv", "--out", generic / "e2", *args)
    not_updated = run_cli("update", generic / "renamed.csv", "--model", generic / "model", "--out", generic / "u2")
    for refused in (missing, not_updated):  # one line and the invalid-records exit code, no traceback
        assert refused.exit_code == 1, refused.output
        assert refused.output.startswith("carrisk: error: ") and refused.output.count("\n") == 1
        assert "no outcome column 'time'" in refused.output and "--time-col" in refused.output
    named = run_cli(
        "evaluate",
        generic / "renamed.csv",
        "--out",
        generic / "e2",
        "--time-col",
        "days",
        "--event-col",
        "status",
        *args,
    )
    assert named.exit_code == 0, named.output
    # a clinical model has fixed outcome columns: naming others is refused, not ignored
    clinical = run_cli("evaluate", generic / "centre.csv", "--out", generic / "e3", "--time-col", "days")
    assert clinical.exit_code != 0 and "generic-mode" in clinical.output


def test_update_writes_a_generic_bundle_that_predicts_and_explains_the_updated_efs(generic):
    out = generic / "updated"
    result = run_cli(
        "update", generic / "renamed.csv", "--model", generic / "model", "--out", out, "--level",
        "recalibration", "--time-col", "days", "--event-col", "status", "--reference-days", "1825",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    update = carrisk.read_manifest(out)["model"]["update"]
    assert update["level"] == "recalibration" and update["reference_days"] == 1825
    assert update["update_cohort"]["outcome_columns"] == {"time": "days", "event": "status"}
    updated = carrisk.load_model(out)
    assert isinstance(updated, UpdatedModel)
    patients = pd.read_csv(generic / "centre.csv").drop(columns=["time", "event"]).head(6)
    predicted = run_cli("predict", generic / "few.csv", "--model", out, "--out", generic / "p.csv")
    assert predicted.exit_code == 0, predicted.output
    table = pd.read_csv(generic / "p.csv")
    np.testing.assert_allclose(table["efs_12mo"], updated.predict_survival(patients, [365.25])[:, 0], rtol=1e-9)
    shap = updated.explain(patients, horizon=365.25)
    np.testing.assert_allclose(
        shap.base_values + shap.values.sum(axis=1), updated.predict_survival(patients, [365.25])[:, 0], atol=1e-9
    )
    explained = run_cli("explain", generic / "few.csv", "--model", out, "--out", generic / "explanations")
    assert explained.exit_code == 0, explained.output


def test_update_model_on_a_generic_table_reads_the_training_outcome_columns(generic):
    model = carrisk.load_model(generic / "model")
    centre = carrisk.read_records(generic / "centre.csv")
    result = update_model(model, centre, level="recalibration_in_the_large", reference_days=1825)
    event, time = centre["event"].astype(int).to_numpy() == 1, centre["time"].astype(float).to_numpy()
    times, km = kaplan_meier_estimator(event, time)
    observed = 1.0 - km[np.searchsorted(times, 1825, side="right") - 1]
    predicted = 1.0 - result.model.predict_survival(centre, [1825])[:, 0]
    assert predicted.mean() == pytest.approx(observed, abs=1e-9)
