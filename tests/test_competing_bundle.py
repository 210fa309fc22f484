"""The cause-specific model travels with the EFS model: fitted at training, saved in the bundle, used by --causes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import carrisk
from carrisk import fit_efs_model, load_model, save_model, simulate_cohort, survival_target
from carrisk.cli import app
from carrisk.competing.outcomes import CAUSES
from carrisk.competing.prediction import CauseSpecificModel
from carrisk.features import FeatureSpec
from carrisk.schema import RecordError
from carrisk.unseen import marginalisation_plan

FOREST = {"n_estimators": 20, "min_samples_leaf": 15, "max_times": 30, "grid": {}}


def _fit(records: pd.DataFrame, **kwargs):
    return fit_efs_model(records, survival_target(records), "rsf", seed=3, synthetic=True, **FOREST, **kwargs)


@pytest.fixture(scope="module")
def model():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("carrisk.predict.CAUSE_BOOTSTRAP", 3)
        return _fit(simulate_cohort(n=250, seed=21).records)


@pytest.fixture(scope="module")
def patients():
    return simulate_cohort(n=12, seed=22).records


def test_training_on_records_fits_and_stores_the_cause_model(model):
    assert isinstance(model.cause_model, CauseSpecificModel)
    assert len(model.cause_model.bootstrap_) == 3 and model.cause_model.random_state == 3


def test_predict_causes_equals_the_function_on_the_efs_prediction(model, patients):
    table = model.predict_causes(patients)
    plan = marginalisation_plan(patients, model.features.categorize(patients), model.level_counts)
    expected = carrisk.predict_causes(
        model.predict_efs(patients, top=0), model.cause_model, patients, mixture=(plan[0], plan[1])
    )
    pd.testing.assert_frame_equal(table, expected)
    for horizon in ("6mo", "12mo"):
        total = table[[f"cif_{c}_{horizon}" for c in CAUSES]].sum(axis=1)
        np.testing.assert_allclose(total, 1.0 - model.predict_efs(patients, top=0)[f"efs_{horizon}"], atol=1e-12)
    curves = np.array([[row[c] for c in CAUSES] for row in table["cause_curves"]])
    efs_curves = np.array([c["efs"] for c in model.predict_efs(patients, top=0)["curve"]])
    np.testing.assert_allclose(curves.sum(axis=1), 1.0 - efs_curves, atol=1e-12)


def test_manifest_records_the_penalties_the_cause_model_chose(model, tmp_path):
    manifest = carrisk.read_manifest(save_model(model, tmp_path / "m"))
    assert manifest["model"]["cause_model"]["alpha"] == "cv"
    assert manifest["model"]["cause_model"]["alpha_chosen"] == model.cause_model.alpha_
    assert set(manifest["model"]["cause_model"]["alpha_chosen"]) == set(CAUSES[1:])


def test_cause_model_survives_the_bundle_round_trip(model, patients, tmp_path):
    loaded = load_model(save_model(model, tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.predict_causes(patients), model.predict_causes(patients))


def test_no_cause_model_without_outcome_columns_or_when_declined(model):
    records = simulate_cohort(n=120, seed=23).records
    y = survival_target(records)
    outcome_free = records.drop(columns=["relapse_phenotype"])
    assert fit_efs_model(outcome_free, y, "coxph", grid={}, n_bootstrap=2).cause_model is None
    assert fit_efs_model(records, y, "coxph", grid={}, n_bootstrap=2, causes=False).cause_model is None
    with pytest.raises(ValueError, match="causes=True needs records"):
        fit_efs_model(outcome_free, y, "coxph", grid={}, n_bootstrap=2, causes=True)


def test_generic_mode_never_fits_a_cause_model():
    records = simulate_cohort(n=120, seed=24).records
    table = records[["patient_id", "age_years", "efs_days", "efs_event", "day28_cr", "relapse_phenotype"]]
    table = table.assign(os_days=records["os_days"], death=records["death"])
    spec = FeatureSpec(clinical=False, numeric=("age_years",))
    fitted = fit_efs_model(table, survival_target(records), "coxph", spec=spec, grid={}, n_bootstrap=2)
    assert fitted.cause_model is None
    with pytest.raises(ValueError, match="carries no cause-specific model"):
        fitted.predict_causes(records.head(2))


def test_contradictory_outcomes_warn_by_default_and_raise_when_asked():
    records = simulate_cohort(n=120, seed=25).records
    censored = records.index[records["efs_event"] == 0][0]
    records.loc[censored, "relapse_phenotype"] = "CD19-"
    y = survival_target(records)
    with pytest.warns(UserWarning, match="no cause-specific model fitted"):
        assert fit_efs_model(records, y, "coxph", grid={}, n_bootstrap=2).cause_model is None
    with pytest.raises(RecordError, match="relapse_phenotype"):
        fit_efs_model(records, y, "coxph", grid={}, n_bootstrap=2, causes=True)


def test_cli_causes_use_the_stored_model(model, patients, tmp_path):
    bundle = save_model(model, tmp_path / "m")
    patients.to_csv(tmp_path / "p.csv", index=False)
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "p.csv"), "--model", str(bundle), "--causes", "--json", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "refitting" not in result.output
    rows = json.loads((tmp_path / "o").read_text())
    expected = model.predict_causes(patients)
    np.testing.assert_allclose([r["cif_cd19neg_12mo"] for r in rows], expected["cif_cd19neg_12mo"], atol=1e-12)


def test_cli_causes_without_a_cause_model_is_a_one_line_error(model, patients, tmp_path):
    bare = load_model(save_model(model, tmp_path / "m"))
    bare.cause_model = None
    bundle = save_model(bare, tmp_path / "bare")
    patients.to_csv(tmp_path / "p.csv", index=False)
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "p.csv"), "--model", str(bundle), "--causes"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "carries no cause-specific model" in result.output
