"""Competing-risks forest: leaf incidences are Aalen-Johansen, the forest is comprisk's, explained and saved safely."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from carrisk._safe_load import restricted_load
from carrisk.competing import CAUSES, aalen_johansen, derive_first_event
from carrisk.competing.forest import CompetingRiskForest
from carrisk.simulate import simulate_cohort

comprisk = pytest.importorskip("comprisk")


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(n=300, seed=7).records


@pytest.fixture(scope="module")
def forest(cohort):
    return CompetingRiskForest(n_estimators=8, random_state=3).fit(cohort)


def _events(records):
    events = derive_first_event(records)
    return events["time_days"].to_numpy(dtype=float), events["cause_code"].to_numpy(dtype=int)


def test_every_leaf_incidence_is_aalen_johansen_of_its_in_bag_patients(forest, cohort):
    time, code = _events(cohort)
    design = forest._design(cohort)
    checked = 0
    for b, tree in enumerate(forest.estimators_[:3]):
        leaf, cif, weight = tree.apply(design), tree.leaf_cif(), forest.inbag_counts_[:, b]
        for node in np.unique(leaf[weight > 0]):
            rows = np.flatnonzero((leaf == node) & (weight > 0))
            rows = np.repeat(rows, weight[rows])  # bootstrap multiplicity
            reference = aalen_johansen(time[rows], code[rows], CAUSES)
            index = np.searchsorted(reference.times, forest.unique_times_, side="right") - 1
            expected = np.where(index[:, None] >= 0, reference.cif[np.maximum(index, 0)], 0.0)
            np.testing.assert_allclose(cif[node], expected, atol=1e-12)
            checked += 1
    assert checked > 10


def test_forest_incidence_equals_comprisk_and_adds_up_to_its_survival(forest, cohort):
    time, code = _events(cohort)
    design = forest._design(cohort)
    seen = np.unique(code[code > 0])  # comprisk numbers the causes present 1, 2, ...
    reference = comprisk.CompetingRiskForest(
        n_estimators=8,
        max_depth=None,
        min_samples_split=30,
        min_samples_leaf=15,
        max_features=5,
        samptype="swr",
        random_state=3,
        time_grid=forest.unique_times_.size,
        n_jobs=1,
        nsplit=0,
        split_ntime=None,
    ).fit(design, time, np.searchsorted(seen, code) + (code > 0))
    expected = np.asarray(reference.predict_cif(design)).transpose(0, 2, 1)  # (n, causes, times) -> (n, times, causes)
    predicted = forest.predict_cif(cohort)
    assert seen.size < len(CAUSES)  # a cause without events in this cohort: its incidence is 0
    np.testing.assert_allclose(predicted[:, :, seen - 1], expected, atol=1e-12)
    np.testing.assert_array_equal(np.delete(predicted, seen - 1, axis=2), 0.0)
    assert np.all(np.diff(predicted, axis=1) >= -1e-15)
    assert predicted.sum(axis=2).max() <= 1.0 + 1e-12


def test_causes_missing_from_training_are_zero_and_codes_are_remapped(cohort):
    _, code = _events(cohort)
    without = cohort[code != CAUSES.index("lineage_switch") + 1]
    fitted = CompetingRiskForest(n_estimators=3, random_state=0).fit(without)
    cif = fitted.predict_cif(without)
    assert cif.shape[2] == len(CAUSES)
    assert np.all(cif[:, :, CAUSES.index("lineage_switch")] == 0)
    # the causes after the gap keep their names: death in remission is still last, CD19-negative still third
    reference = aalen_johansen(*_events(without), CAUSES).cif[-1]
    np.testing.assert_allclose(cif[:, -1].mean(axis=0), reference, atol=0.05)


def test_exact_shap_adds_up_to_the_12_month_incidence(forest, cohort):
    patients = cohort.iloc[:4]
    result = forest.explain_cif(patients, "cd19neg", 365.25)
    index = np.searchsorted(forest.unique_times_, 365.25, side="right") - 1
    np.testing.assert_allclose(result.predictions, forest.predict_cif(patients)[:, index, CAUSES.index("cd19neg")])
    assert result.additivity_error() < 1e-12
    assert "blina_status" in result.feature_names and "blina_status_responder" not in result.feature_names
    assert result.output == "cif_cd19neg"


def test_saved_forest_loads_through_the_allow_list_and_predicts_the_same(forest, cohort, tmp_path):
    path = tmp_path / "forest.joblib"
    joblib.dump(forest, path, compress=3)
    with open(path, "rb") as handle:
        loaded = restricted_load(handle, str(path))
    np.testing.assert_array_equal(loaded.predict_cif(cohort.iloc[:20]), forest.predict_cif(cohort.iloc[:20]))


def test_estimator_api_and_bad_parameters(cohort):
    forest = CompetingRiskForest(n_estimators=2, splitrule="logrank", split_cause="lineage_switch")
    assert clone(forest).get_params()["split_cause"] == "lineage_switch"
    assert clone(forest).fit(cohort).predict_cif(cohort.iloc[:3]).shape[0] == 3
    with pytest.raises(ValueError, match="splitrule"):
        CompetingRiskForest(splitrule="gini").fit(cohort)
    with pytest.raises(ValueError, match="split_cause"):
        CompetingRiskForest(split_cause="relapse").fit(cohort)


def test_forest_shares_split_an_efs_prediction_and_add_up_to_it(forest, cohort):
    from carrisk.competing.prediction import predict_causes

    patients = cohort.iloc[:6]
    days = np.array([20.0, 28.0, 100.0, 200.0, 365.25, 700.0])
    efs = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
    prediction = pd.DataFrame(
        {"patient_id": patients["patient_id"], "curve": [{"days": days.tolist(), "efs": efs.tolist()}] * 6}
    )
    table = predict_causes(prediction, forest, patients)
    total = table[[f"cif_{c}_12mo" for c in CAUSES]].sum(axis=1)
    np.testing.assert_allclose(total, 0.4, atol=1e-12)
    assert "cif_cd19neg_12mo_lo" not in table  # no bootstrap refits, no interval
