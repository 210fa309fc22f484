"""Cross-validation of competing-risks models (carrisk.competing.validation) and ``carrisk cv --causes``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from carrisk import simulate_cohort, survival_target
from carrisk.cli import app
from carrisk.competing.fine_gray_model import FineGrayModel
from carrisk.competing.forest import CompetingRiskForest
from carrisk.competing.metrics import cause_concordance, cif_auc, cif_brier_score
from carrisk.competing.nonparametric import aalen_johansen
from carrisk.competing.outcomes import CAUSES, derive_first_event
from carrisk.competing.prediction import CauseSpecificModel
from carrisk.competing.validation import cross_validate_causes
from carrisk.tuning import tuned_model
from carrisk.validation import cross_validate, outer_splits


@pytest.fixture(scope="module")
def records():
    return simulate_cohort(n=240, seed=31).records


@pytest.fixture(scope="module")
def result(records):
    return cross_validate_causes(records, folds=3, repeats=1, seed=4)


def test_folds_are_the_efs_cross_validations(records):
    y = survival_target(records)
    efs = cross_validate(
        records,
        y,
        {"coxph": tuned_model("coxph", grid={}, alpha=10.0)},
        folds=3,
        repeats=2,
        seed=4,
        calibration_bootstrap=0,
    )
    splits = outer_splits(y[y.dtype.names[0]], 3, 2, 4)
    for fold, (_, test) in zip(efs.folds, splits):
        np.testing.assert_array_equal(fold["test_index"], test)


def test_each_fold_is_scored_by_a_model_fitted_on_its_training_rows_only(records, result):
    events = derive_first_event(records)
    time, code = events["time_days"].to_numpy(), events["cause_code"].to_numpy()
    train, test = outer_splits(code > 0, 3, 1, 4)[1]
    model = CauseSpecificModel().fit(records.iloc[train])
    assert result.folds[1]["chosen"] == model.alpha_  # penalties chosen inside the training fold
    index = np.searchsorted(model.unique_times_, 365.25, side="right") - 1
    k = CAUSES.index("cd19neg")
    predicted = model.predict_cif(records.iloc[test])[:, index, k]
    scores = result.folds[1]["metrics"]["cd19neg"]
    assert scores["c_12mo"] == pytest.approx(cause_concordance(time[test], code[test], predicted, k + 1, tau=365.25))
    assert scores["auc_12mo"] == pytest.approx(cif_auc(time[test], code[test], predicted, k + 1, 365.25))
    assert scores["brier_12mo"] == pytest.approx(cif_brier_score(time[test], code[test], predicted, k + 1, 365.25))
    null = aalen_johansen(time[train], code[train], CAUSES).at([365.25]).set_index("cause")["cif"]["cd19neg"]
    expected_null = cif_brier_score(time[test], code[test], np.full(len(test), null), k + 1, 365.25)
    assert scores["brier_null_12mo"] == pytest.approx(expected_null)


def test_summary_and_json_section(result):
    section = result.to_dict()
    assert set(section["metrics"]) == set(CAUSES)
    summary = section["metrics"]["no_cr"]["c_12mo"]
    assert summary["n"] == 3 and summary["mean"] == pytest.approx(np.mean(summary["folds"]))
    assert sum(section["events"].values()) == int(
        derive_first_event(simulate_cohort(n=240, seed=31).records)["cause_code"].gt(0).sum()
    )
    json.dumps(section)
    assert "CD19-negative relapse" in result.to_text()


def test_cli_cv_causes_writes_the_causes_section(records, tmp_path):
    records.to_csv(tmp_path / "c.csv", index=False)
    out = tmp_path / "cv.json"
    args = ["cv", str(tmp_path / "c.csv"), "--models", "coxph", "--folds", "3", "--repeats", "1"]
    result = CliRunner().invoke(
        app, [*args, "--causes", "--quiet", "--n-jobs", "1", "--calibration-bootstrap", "0", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Cause-specific model, out of fold at 12mo" in result.output
    written = json.loads(out.read_text())
    assert written["causes"]["settings"]["seed"] == 0 and set(written["causes"]["metrics"]) == set(CAUSES)
    assert written["causes"]["model"] == "CauseSpecificModel" and "other_models" not in written["causes"]


@pytest.mark.parametrize("model", [FineGrayModel(alpha=30.0), CompetingRiskForest(n_estimators=10)], ids=type)
def test_fine_gray_and_forest_are_scored_on_the_same_folds_with_the_same_contract(records, result, model):
    other = cross_validate_causes(records, folds=3, repeats=1, seed=4, model=model)
    section, reference = other.to_dict(), result.to_dict()
    assert section["model"] == type(model).__name__
    assert set(section) == set(reference) and set(section["metrics"]) == set(reference["metrics"])
    assert set(section["metrics"]["cd19neg"]) == set(reference["metrics"]["cd19neg"])
    assert all(f["error"] is None for f in section["folds"])
    # the reference (no covariates) is the same in every model's folds
    for cause in CAUSES:
        assert (
            section["metrics"][cause]["brier_null_12mo"]["folds"]
            == reference["metrics"][cause]["brier_null_12mo"]["folds"]
        )
    events = derive_first_event(records)
    time, code = events["time_days"].to_numpy(), events["cause_code"].to_numpy()
    train, test = outer_splits(code > 0, 3, 1, 4)[0]
    fitted = model.fit(records.iloc[train])
    index = np.searchsorted(fitted.unique_times_, 365.25, side="right") - 1
    predicted = fitted.predict_cif(records.iloc[test])[:, index, CAUSES.index("cd19neg")]
    expected = cif_brier_score(time[test], code[test], predicted, CAUSES.index("cd19neg") + 1, 365.25)
    assert other.folds[0]["metrics"]["cd19neg"]["brier_12mo"] == pytest.approx(expected)


def test_cli_cv_cause_models(records, tmp_path):
    records.to_csv(tmp_path / "c.csv", index=False)
    out = tmp_path / "cv.json"
    args = ["cv", str(tmp_path / "c.csv"), "--models", "coxph", "--folds", "3", "--repeats", "1", "--quiet"]
    options = ["--causes", "--cause-models", "cause_specific,fine_gray", "--n-jobs", "1", "--json", str(out)]
    result = CliRunner().invoke(app, [*args, *options, "--calibration-bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "Fine-Gray models, out of fold at 12mo" in result.output
    written = json.loads(out.read_text())["causes"]
    assert written["model"] == "CauseSpecificModel"
    assert written["other_models"]["FineGrayModel"]["params"]["alpha"] == "cv"
    bad = CliRunner().invoke(app, [*args, "--causes", "--cause-models", "cox"])
    assert bad.exit_code == 2 and "--cause-models: unknown model 'cox'" in bad.output


def test_cli_cv_causes_needs_records_not_a_generic_table(records, tmp_path):
    records.to_csv(tmp_path / "c.csv", index=False)
    generic = ["--time-col", "efs_days", "--event-col", "efs_event", "--features", "age_years"]
    result = CliRunner().invoke(app, ["cv", str(tmp_path / "c.csv"), "--models", "coxph", *generic, "--causes"])
    assert result.exit_code == 2, result.output
    assert "--causes needs carrisk records with the outcome columns, not generic mode" in result.output
