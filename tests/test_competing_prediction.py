"""Tests for carrisk.competing.prediction: per-patient cause incidences consistent with an EFS prediction."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from carrisk.competing.outcomes import CAUSES
from carrisk.competing.prediction import CauseSpecificModel, coalition_shap, predict_causes
from carrisk.simulate import simulate_cohort


@pytest.fixture(scope="module")
def fitted():
    return CauseSpecificModel(n_bootstrap=5).fit(simulate_cohort(n=420, seed=7).records)


@pytest.fixture(scope="module")
def patients():
    return simulate_cohort(n=40, seed=99).records


def fake_efs_prediction(records: pd.DataFrame) -> pd.DataFrame:
    """An EFS model's output: a decreasing curve with a drop at day 28 (no CR) and a flat stretch."""
    days = np.array([28.0, 60.0, 100.0, 182.625, 250.0, 365.25, 700.0])
    rng = np.random.default_rng(0)
    curves = []
    for _ in range(len(records)):
        drops = rng.uniform(0.0, 0.08, days.size)
        drops[4] = 0.0
        curves.append({"days": days.tolist(), "efs": (1.0 - np.cumsum(drops)).tolist()})
    return pd.DataFrame({"patient_id": records["patient_id"].to_numpy(), "curve": curves})


def test_own_causes_and_efs_add_up_to_one(fitted, patients):
    cif = fitted.predict_cif(patients)
    assert cif.shape == (len(patients), fitted.unique_times_.size, len(CAUSES))
    efs = 1.0 - cif.sum(axis=2)
    assert ((efs >= 0) & (efs <= 1)).all() and (np.diff(cif, axis=1) >= -1e-15).all()


def test_causes_add_up_to_one_minus_the_given_efs_at_every_time(fitted, patients):
    efs_prediction = fake_efs_prediction(patients)
    table = predict_causes(efs_prediction, fitted, patients)
    for row, efs in zip(table.itertuples(), efs_prediction["curve"]):
        curves = np.array([row.cause_curves[c] for c in CAUSES])
        np.testing.assert_allclose(curves.sum(axis=0), 1.0 - np.array(efs["efs"]), atol=1e-12)
        assert (np.diff(curves, axis=1) >= -1e-15).all()
    for horizon in ("6mo", "12mo"):
        total = table[[f"cif_{c}_{horizon}" for c in CAUSES]].sum(axis=1)
        np.testing.assert_allclose(total, 1.0 - table[f"efs_{horizon}"], atol=1e-12)
        point, low, high = (table[f"cif_cd19neg_{horizon}{s}"] for s in ("", "_lo", "_hi"))
        assert (low <= point + 1e-12).all() and (point <= high + 1e-12).all()


def test_the_cause_split_follows_the_cause_model(fitted, patients):
    """With the model's own EFS, splitting 1 - EFS by its increments returns its own incidences."""
    cif = fitted.predict_cif(patients)
    days = fitted.unique_times_
    own = pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy(),
            "curve": [{"days": days.tolist(), "efs": (1.0 - c.sum(axis=1)).tolist()} for c in cif],
        }
    )
    table = predict_causes(own, fitted, patients, horizons={"12mo": 365.25})
    index = np.searchsorted(days, 365.25, side="right") - 1
    for k, cause in enumerate(CAUSES):
        np.testing.assert_allclose(table[f"cif_{cause}_12mo"], cif[:, index, k], atol=1e-12)


def test_after_cr_cause_models_are_scikit_survivals_ridge_cox(fitted):
    # Each after-CR cause: CoxPHSurvivalAnalysis(alpha=chosen penalty, ties="breslow") on the patients in CR, other
    # causes censored; the same coefficients and Breslow cumulative baseline hazard on the model's grid.
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    from carrisk.competing.prediction import AFTER_CR_CAUSES, cause_training_data

    _, design, time, code = cause_training_data(fitted.spec, simulate_cohort(n=420, seed=7).records)
    in_cr = code != 1
    for k, cause in enumerate(AFTER_CR_CAUSES, start=1):
        target = Surv.from_arrays((code == k + 1)[in_cr], time[in_cr])
        cox = CoxPHSurvivalAnalysis(alpha=fitted.alpha_[cause], ties="breslow").fit(design[in_cr], target)
        np.testing.assert_allclose(fitted.coef_[k], cox.coef_, atol=1e-6)
        reference = cox.cum_baseline_hazard_(np.maximum(fitted.unique_times_, cox.cum_baseline_hazard_.x[0]))
        reference[fitted.unique_times_ < cox.cum_baseline_hazard_.x[0]] = 0.0
        np.testing.assert_allclose(np.cumsum(fitted.baseline_[k]), reference, atol=1e-8)


def test_estimator_contract(fitted):
    model = CauseSpecificModel(alpha=5.0, n_bootstrap=2)
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(model, "coef_") and fitted.coef_.shape[0] == len(CAUSES)


def brute_force_shapley(value_of_coalition, q: int) -> np.ndarray:
    phi = np.zeros(q)
    for order in itertools.permutations(range(q)):
        members: set[int] = set()
        for player in order:
            before = value_of_coalition(frozenset(members))
            members.add(player)
            phi[player] += value_of_coalition(frozenset(members)) - before
    return phi / math.factorial(q)


def test_coalition_shap_equals_the_permutation_definition():
    rng = np.random.default_rng(2)
    contrib_x = rng.normal(size=(2, 4, 3))
    contrib_bg = rng.normal(size=(5, 4, 3))

    def value(lp: np.ndarray) -> np.ndarray:
        return np.tanh(lp[..., 0]) * np.exp(0.3 * lp[..., 1]) + lp[..., 2] ** 2

    phi = coalition_shap(contrib_x, contrib_bg, value)
    for i in range(2):

        def coalition_value(members: frozenset[int], i: int = i) -> float:
            inside = np.array([g in members for g in range(4)])
            lp = np.where(inside[None, :, None], contrib_x[i][None], contrib_bg).sum(axis=1)
            return float(value(lp).mean())

        np.testing.assert_allclose(phi[i], brute_force_shapley(coalition_value, 4), atol=1e-12)


@pytest.mark.slow
def test_explanation_of_the_twelve_month_cd19_negative_incidence_adds_up(fitted, patients):
    result = fitted.explain_cif(patients.head(1), cause="cd19neg")
    cif = fitted.predict_cif(patients.head(1))
    index = np.searchsorted(fitted.unique_times_, 365.25, side="right") - 1
    assert result.predictions[0] == pytest.approx(cif[0, index, CAUSES.index("cd19neg")], abs=1e-12)
    assert result.base_values + result.values.sum(axis=1)[0] == pytest.approx(result.predictions[0], abs=1e-12)
    assert "disease_burden" in result.feature_names and len(result.feature_names) == 13


@pytest.mark.slow
def test_cli_predict_causes_adds_up_with_efs(tmp_path):
    from typer.testing import CliRunner

    from carrisk.cli import app

    patients, training, out = tmp_path / "p.csv", tmp_path / "train.csv", tmp_path / "p.json"
    simulate_cohort(n=3, seed=4).records.to_csv(patients, index=False)
    simulate_cohort(n=300, seed=5).records.to_csv(training, index=False)
    result = CliRunner().invoke(
        app, ["predict", str(patients), "--causes", "--cause-training", str(training), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "CD19-negative relapse" in result.output
    for row in json.loads(out.read_text()):
        total = sum(row[f"cif_{cause}_12mo"] for cause in CAUSES)
        assert total == pytest.approx(1 - row["efs_12mo"], abs=1e-9)
        assert set(row["cause_curves"]) == {"days", *CAUSES}


def test_penalties_are_chosen_per_cause_by_inner_cross_validation(fitted):
    assert fitted.alpha == "cv" and set(fitted.alpha_) == set(CAUSES[1:])
    for cause in ("cd19pos", "cd19neg", "death_in_remission"):
        scores = fitted.alpha_cv_[cause]
        assert fitted.alpha_[cause] == fitted.alphas[int(np.argmax(scores))]
    records = simulate_cohort(n=420, seed=7).records
    fixed = CauseSpecificModel(alpha=fitted.alpha_["cd19neg"]).fit(records)
    k = CAUSES.index("cd19neg")
    np.testing.assert_allclose(fixed.coef_[k], fitted.coef_[k])
    assert fixed.alpha_cv_ == {} and fixed.manifest()["alpha_candidates"] is None
    with pytest.raises(ValueError, match="alpha must be a number or 'cv'"):
        CauseSpecificModel(alpha="auto").fit(records)


def test_a_marginalised_patient_gets_the_same_mixture_of_cause_incidences(fitted, patients):
    """An unseen 'exposed, response unknown' patient: the cause shares mix responder and nonresponder, not naive."""
    from carrisk.features import ClinicalFeatures
    from carrisk.unseen import marginalisation_plan

    records = patients.head(3).copy()
    records["blina_exposed"] = "yes"
    records["blina_response"] = np.nan  # exposed, response not known
    counts = {"blina_status": {"naive": 300, "responder": 60, "nonresponder": 30}}
    expanded, weights, assumptions = marginalisation_plan(
        records, ClinicalFeatures().fit(records).categorize(records), counts
    )
    assert all("responder 67%" in a and "nonresponder 33%" in a for a in assumptions)
    mixed = np.asarray(weights @ fitted.predict_cif(expanded).reshape(len(expanded), -1)).reshape(3, -1, len(CAUSES))
    days = fitted.unique_times_
    own = pd.DataFrame(
        {
            "patient_id": records["patient_id"].to_numpy(),
            "curve": [{"days": days.tolist(), "efs": (1.0 - c.sum(axis=1)).tolist()} for c in mixed],
        }
    )
    table = predict_causes(own, fitted, records, horizons={"12mo": 365.25}, mixture=(expanded, weights))
    index = np.searchsorted(days, 365.25, side="right") - 1
    for k, cause in enumerate(CAUSES):
        np.testing.assert_allclose(table[f"cif_{cause}_12mo"], mixed[:, index, k], atol=1e-12)
    as_naive = predict_causes(own, fitted, records, horizons={"12mo": 365.25})  # the old behaviour
    assert not np.allclose(as_naive["cif_cd19neg_12mo"], table["cif_cd19neg_12mo"], atol=1e-4)


def test_no_cr_incidence_follows_the_recorded_times_of_no_cr():
    """'No CR by day 28' accrues as its recorded times do (early deaths before day 28), not all at the first time."""
    from carrisk.competing.outcomes import derive_first_event

    records = simulate_cohort(n=300, seed=5).records
    model = CauseSpecificModel(alpha=100.0).fit(records)
    events = derive_first_event(records)
    no_cr_times = np.sort(events.loc[events["cause_code"] == 1, "time_days"].to_numpy(dtype=float))
    assert no_cr_times[0] < no_cr_times[-1] <= 28.0  # early deaths and day-28 assessments
    expected = np.searchsorted(no_cr_times, model.unique_times_, side="right") / no_cr_times.size
    cif = model.predict_cif(records.head(5))[:, :, 0]
    np.testing.assert_allclose(cif / cif[:, -1:], np.broadcast_to(expected, cif.shape), atol=1e-12)


def test_an_efs_step_where_the_cause_model_has_none_goes_to_the_causes_still_to_come():
    from carrisk.competing.prediction import _split

    cause_times = np.array([28.0, 100.0])
    # cause 0 ("no CR") all at day 28; cause 1 at day 100 only
    cause_cif = np.array([[[0.2, 0.0], [0.2, 0.3]]])
    days = np.array([28.0, 60.0, 100.0])
    efs = np.array([[0.8, 0.7, 0.5]])
    split = _split(efs, days, cause_cif, cause_times)[0]
    np.testing.assert_allclose(split[:, 0], [0.2, 0.2, 0.2])  # the day-60 failure is not a "no CR"
    np.testing.assert_allclose(split[:, 1], [0.0, 0.1, 0.3])


def test_cause_intervals_stay_within_one_minus_efs(fitted, patients):
    efs_prediction = fake_efs_prediction(patients)
    table = predict_causes(efs_prediction, fitted, patients)
    for horizon in ("6mo", "12mo"):
        for cause in CAUSES:
            low, point, high = (table[f"cif_{cause}_{horizon}{s}"] for s in ("_lo", "", "_hi"))
            assert (low >= 0).all() and (low <= point + 1e-12).all() and (point <= high + 1e-12).all()
            assert (high <= 1.0 - table[f"efs_{horizon}"] + 1e-12).all()


def test_cause_intervals_carry_the_efs_interval(fitted, patients):
    """With the EFS model's interval given, a cause's band is its share's band times the range of 1 - EFS."""
    efs_prediction = fake_efs_prediction(patients)
    bare = predict_causes(efs_prediction, fitted, patients, horizons={"12mo": 365.25})
    failed = 1.0 - bare["efs_12mo"].to_numpy()
    widened = efs_prediction.assign(efs_12mo_lo=bare["efs_12mo"] - 0.1, efs_12mo_hi=bare["efs_12mo"] + 0.05)
    table = predict_causes(widened, fitted, patients, horizons={"12mo": 365.25})
    for cause in CAUSES:
        share_low = bare[f"cif_{cause}_12mo_lo"].to_numpy() / failed
        share_high = bare[f"cif_{cause}_12mo_hi"].to_numpy() / failed
        np.testing.assert_allclose(table[f"cif_{cause}_12mo_lo"], share_low * (failed - 0.05), atol=1e-12)
        np.testing.assert_allclose(table[f"cif_{cause}_12mo_hi"], share_high * (failed + 0.1), atol=1e-12)
        assert (table[f"cif_{cause}_12mo_lo"] <= table[f"cif_{cause}_12mo"] + 1e-12).all()
        assert (table[f"cif_{cause}_12mo"] <= table[f"cif_{cause}_12mo_hi"] + 1e-12).all()
