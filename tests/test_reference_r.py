"""Cross-checks against R: bootstrap optimism correction against rms ``validate.cph``.

The reference values were made by ``Rscript tests/reference/rms_validate.R`` (rms 6.5.0, survival 3.5.3) on the
GBSG2 breast cancer data (TH.data; 686 patients, 299 events, tied times) and are stored beside the script, with
the bootstrap index sets both sides use; CI has no R.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from carrisk.evaluate import calibration_slope
from carrisk.features import FeatureSpec
from carrisk.internal_validation import bootstrap_optimism
from carrisk.target import make_target

REFERENCE = Path(__file__).parent / "reference"
#: Six months: no predicted probability of any refit falls outside carrisk's clip [1e-6, 1 - 1e-6] (see the
#: README: at 12 months one refit predicts 1.3e-7 for one patient, and clipping changes its slope).
HORIZON = 182.625


def gbsg2() -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    data = pd.read_csv(REFERENCE / "gbsg2.csv")
    y = make_target(data["cens"].to_numpy(dtype=bool), data["time"].to_numpy(dtype=float))
    return data.drop(columns=["time", "cens"]), y, FeatureSpec.generic(data, "time", "cens")


def boot_indices() -> np.ndarray:
    """The index sets validate.cph used, 0-based (one row per resample)."""
    return np.loadtxt(REFERENCE / "gbsg2_boot_indices.csv.gz", delimiter=",", dtype=int) - 1


def rms_validate(n_resamples: int, tolerance: str = "tight") -> pd.DataFrame:
    table = pd.read_csv(REFERENCE / "rms_validate.csv")
    chosen = table[(table["B"] == n_resamples) & (table["tolerance"] == tolerance)]
    return chosen.set_index("measure")


def test_stored_reference_inputs_are_what_the_r_script_describes():
    records, y, spec = gbsg2()
    assert records.shape == (686, 8) and int(y["event"].sum()) == 299
    assert spec.categorical == ("horTh", "menostat", "tgrade")
    indices = boot_indices()
    assert indices.shape == (50, 686) and indices.min() >= 0 and indices.max() <= 685


def test_bootstrap_optimism_equals_rms_validate_with_the_same_resamples():
    """Harrell's C = Dxy / 2 + 1/2 and the calibration slope: apparent, optimism and corrected, to 1e-6.

    Unpenalised Cox model with Efron's ties (rms's default) on both sides; the first 10 of the stored resamples.
    """
    records, y, spec = gbsg2()
    result = bootstrap_optimism(
        records,
        y,
        "coxph",
        spec=spec,
        indices=boot_indices()[:10],
        horizon=HORIZON,
        curve=False,
        alpha=0.0,
        ties="efron",
    )
    ours = result.summary.set_index("measure")
    rms = rms_validate(10)
    assert ours.loc["harrell_c", "n_bootstrap"] == 10 and result.settings["resamples"].startswith("given")
    assert ours.loc["harrell_c", "apparent"] == pytest.approx(rms.loc["Dxy", "index.orig"] / 2 + 0.5, abs=1e-6)
    assert ours.loc["harrell_c", "optimism"] == pytest.approx(rms.loc["Dxy", "optimism"] / 2, abs=1e-6)
    assert ours.loc["harrell_c", "corrected"] == pytest.approx(rms.loc["Dxy", "index.corrected"] / 2 + 0.5, abs=1e-6)
    for column, reference in (("apparent", "index.orig"), ("optimism", "optimism"), ("corrected", "index.corrected")):
        assert ours.loc["calibration_slope", column] == pytest.approx(rms.loc["Slope", reference], abs=1e-6)
    # each refit's own and original-data figures are rms's training and test columns averaged
    assert result.refits["harrell_c_test"].mean() == pytest.approx(rms.loc["Dxy", "test"] / 2 + 0.5, abs=1e-6)
    assert result.refits["calibration_slope_test"].mean() == pytest.approx(rms.loc["Slope", "test"], abs=1e-6)


def test_rms_default_tolerance_stops_short_of_the_converged_fit():
    """rms's own defaults (eps 1e-4, at most 10 Newton steps) differ from the converged figures by up to 5e-4;
    the comparison above is therefore made against validate.cph with its tolerance tightened."""
    tight, loose = rms_validate(50, "tight"), rms_validate(50, "rms")
    difference = (tight["index.corrected"] - loose["index.corrected"]).abs()
    assert 1e-5 < difference.max() < 1e-3


def test_calibration_slope_is_fitted_to_convergence():
    """A Cox model's calibration slope on its own data is exactly 1 (the score equation); lifelines' default
    stopping rule left it at 1.0000012 here."""
    records, y, spec = gbsg2()
    from carrisk.models import make_pipeline

    pipeline = make_pipeline("coxph", spec, alpha=0.0, ties="efron").fit(records, y)
    surv = pipeline[-1].predict_survival_matrix(pipeline[:-1].transform(records), np.array([HORIZON]))[:, 0]
    slope, low, high = calibration_slope(y["event"], y["time"], surv)
    assert slope == pytest.approx(1.0, abs=1e-8)
    assert low < 1.0 < high


def test_indices_must_be_row_numbers_of_the_records():
    records, y, spec = gbsg2()
    with pytest.raises(ValueError, match="one row per resample and 686 columns"):
        bootstrap_optimism(records, y, "coxph", spec=spec, indices=np.zeros((2, 5), dtype=int))
    with pytest.raises(ValueError, match=r"0-based row numbers in \[0, 685\]"):
        bootstrap_optimism(records, y, "coxph", spec=spec, indices=boot_indices()[:1] + 1)


# --- evaluate's AUC, Brier score and IPA against riskRegression::Score -------------------------------------------


class _StoredRisks:
    """A 'model' whose predictions are the stored risks (linear between the stored times, 1 at time 0)."""

    def __init__(self, spec: FeatureSpec, records: pd.DataFrame) -> None:
        from carrisk.features import ClinicalFeatures

        self.features = ClinicalFeatures(spec).fit(records)
        self.risk = pd.read_csv(REFERENCE / "gbsg2_predicted_risk.csv").to_numpy(dtype=float)
        self.times = np.r_[0.0, score_reference()["time"].to_numpy(dtype=float)]

    def predict_survival(self, records: pd.DataFrame, times: Any) -> np.ndarray:
        surv = np.c_[np.ones(len(records)), 1.0 - self.risk[records.index]]
        return np.array([np.interp(np.asarray(times, dtype=float), self.times, row) for row in surv])


def score_reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "riskregression_score.csv")


def _censoring_survival(time: np.ndarray, event: np.ndarray, at: np.ndarray, just_before: bool) -> np.ndarray:
    """Reverse Kaplan-Meier G (events leave the risk set before tied censorings) at ``at`` or just before it."""
    grid = np.unique(time)
    at_risk = np.array([(time >= t).sum() - ((time == t) & event).sum() for t in grid])
    censored = np.array([((time == t) & ~event).sum() for t in grid])
    survival = np.cumprod(1.0 - censored / at_risk)
    position = np.searchsorted(grid, at, side="left" if just_before else "right") - 1
    return np.where(position >= 0, survival[np.clip(position, 0, None)], 1.0)


def _ipcw_brier_and_auc(
    time: np.ndarray, event: np.ndarray, risk: np.ndarray, horizon: float, just_before: bool
) -> tuple[float, float]:
    """Brier score and cumulative/dynamic AUC with cases weighted by 1/G(T) or 1/G(T-)."""
    case, control = event & (time <= horizon), time > horizon
    case_weight = np.where(case, 1.0 / _censoring_survival(time, event, time, just_before), 0.0)
    control_weight = 1.0 / _censoring_survival(time, event, np.array([horizon]), just_before=False)[0]
    brier = float(np.mean(case_weight * (1.0 - risk) ** 2 + np.where(control, control_weight * risk**2, 0.0)))
    ordered = (risk[case][:, None] > risk[control][None, :]) + 0.5 * (risk[case][:, None] == risk[control][None, :])
    auc = float(case_weight[case] @ ordered.sum(axis=1) / (case_weight[case].sum() * control.sum()))
    return brier, auc


@pytest.fixture(scope="module")
def evaluation() -> Any:
    from carrisk.evaluate import evaluate_model

    data = pd.read_csv(REFERENCE / "gbsg2.csv")
    _, _, spec = gbsg2()
    horizons = {f"h{k}": float(t) for k, t in enumerate(score_reference()["time"])}
    return evaluate_model(_StoredRisks(spec, data), data, horizons=horizons, n_bootstrap=2, n_bootstrap_calibration=2)


def test_evaluate_auc_brier_and_ipa_agree_with_riskregression_score(evaluation):
    """Within 5e-5 on GBSG2, whose 38 event times each coincide with a censoring time (see the next test)."""
    for k, row in score_reference().iterrows():
        horizon = f"h{k}"
        assert evaluation.value("auc", horizon) == pytest.approx(row["auc"], abs=2e-5)
        assert evaluation.value("brier", horizon) == pytest.approx(row["brier"], abs=5e-5)
        assert evaluation.value("brier_null", horizon) == pytest.approx(row["brier_null"], abs=5e-5)
        assert evaluation.value("ipa", horizon) == pytest.approx(row["ipa"], abs=2e-5)


def test_the_difference_is_the_censoring_weight_of_an_event_tied_with_a_censoring():
    """riskRegression weights an event at T by 1/G(T-), scikit-survival (and so carrisk) by 1/G(T); both agree
    on everything else (the reverse Kaplan-Meier, the controls' weight 1/G(t), ties in the risks)."""
    data = pd.read_csv(REFERENCE / "gbsg2.csv")
    time, event = data["time"].to_numpy(dtype=float), data["cens"].to_numpy(dtype=bool)
    risk = pd.read_csv(REFERENCE / "gbsg2_predicted_risk.csv").to_numpy(dtype=float)
    y = make_target(event, time)
    from carrisk.metrics import brier_at, time_dependent_auc

    for k, row in score_reference().iterrows():
        horizon = float(row["time"])
        brier, auc = _ipcw_brier_and_auc(time, event, risk[:, k], horizon, just_before=True)
        assert brier == pytest.approx(row["brier"], abs=1e-12) and auc == pytest.approx(row["auc"], abs=1e-12)
        brier, auc = _ipcw_brier_and_auc(time, event, risk[:, k], horizon, just_before=False)
        assert brier == pytest.approx(brier_at(y, y, 1.0 - risk[:, k], horizon), abs=1e-12)
        assert auc == pytest.approx(time_dependent_auc(y, y, risk[:, k], horizon), abs=1e-12)
        assert abs(brier - row["brier"]) > 1e-6  # the tie convention matters on these data
