"""Rebuild the shipped default model, ``models/default``, and its model card, from scratch.

    python -m benchmarks.build_default_model              # model and card
    python -m benchmarks.build_default_model --card-only  # the card of the existing bundle (model untouched)

Simulates the calibrated synthetic cohort (n=420, seed 7), cross-validates the shipped configuration (nested
5-fold x 3, seed 0), fits it on the whole cohort (tuned out of bag, seed 0), saves the bundle and writes
``models/default/MODEL_CARD.md`` with the cross-validated metrics, the calibration of the pooled out-of-fold
predictions and the subgroup table (predicted vs Kaplan-Meier EFS by blinatumomab group and disease burden).
Everything is seeded, so the same library versions rebuild the same model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from carrisk import (
    cross_validate,
    fit_efs_model,
    load_model,
    oracle_concordance,
    save_model,
    simulate_cohort,
    survival_target,
)
from carrisk._io import atomic_write_text
from carrisk.provenance import package_versions
from carrisk.tuning import tuned_model

COHORT_SEED = 7
MODEL_SEED = 0
N_PATIENTS = 420
SHIPPED = {"n_estimators": 600, "max_times": 40}
METRICS = [
    ("harrell_c", "Harrell's C"),
    ("uno_c", "Uno's C"),
    ("auc_6mo", "time-dependent AUC, 6 months"),
    ("auc_12mo", "time-dependent AUC, 12 months"),
    ("ibs", "integrated Brier score (to 24 months)"),
    ("brier_6mo", "Brier score, 6 months"),
    ("brier_12mo", "Brier score, 12 months"),
    ("ici_6mo", "ICI, 6 months"),
    ("ici_12mo", "ICI, 12 months"),
    ("e50_6mo", "E50, 6 months"),
    ("e90_6mo", "E90, 6 months"),
    ("calibration_slope_6mo", "calibration slope, 6 months"),
    ("calibration_slope_12mo", "calibration slope, 12 months"),
]


def main(out: Path, folds: int, repeats: int, card_only: bool = False) -> None:
    cohort = simulate_cohort(n=N_PATIENTS, seed=COHORT_SEED)
    y = survival_target(cohort.records)
    oracle = oracle_concordance(cohort)
    candidate = tuned_model("rsf", random_state=MODEL_SEED, **SHIPPED)
    cv = cross_validate(cohort.records, y, {"rsf": candidate}, folds=folds, repeats=repeats, seed=MODEL_SEED, n_jobs=-1)
    summary = cv.to_dict()["models"]["rsf"]["metrics"]
    if card_only:
        model = load_model(out)
    else:
        model = fit_efs_model(cohort.records, y, "rsf", seed=MODEL_SEED, synthetic=True, cv_metrics=summary, **SHIPPED)
        model.metadata["build"] = {
            "command": "python -m benchmarks.build_default_model",
            "cohort": {"generator": "carrisk.simulate_cohort", "n": N_PATIENTS, "seed": COHORT_SEED},
            "oracle_harrell_c": oracle,
        }
        save_model(model, out)
    head, limitations = model_card(model, summary, oracle, folds, repeats).split("## Limitations", 1)
    card = head + cv_calibration_section(cv, "rsf").lstrip("\n") + "\n## Limitations" + limitations
    atomic_write_text(out / "MODEL_CARD.md", card)
    print(cv.report_text())
    print(f"oracle C {oracle:.3f}; {'card of' if card_only else 'saved'} {out}")


def _km_cell(estimate: float, lower: float, upper: float) -> str:
    if pd.isna(estimate):
        return "n/a (follow-up ends before the horizon)"
    if pd.isna(lower):
        return f"{estimate:.3f} (CI not defined)"
    return f"{estimate:.3f} ({lower:.3f}-{upper:.3f})"


def cv_calibration_section(cv, model: str) -> str:
    """Markdown: calibration of the pooled out-of-fold predictions and the subgroup table, from ``cv``."""
    calibration = cv.calibration_table()
    calibration = calibration[calibration["model"] == model]
    rows = "\n".join(
        f"| {r.horizon} | {r.observed_efs:.3f} | {r.predicted_efs:.3f} | {r.difference:+.3f} | {r.oe_ratio:.2f} "
        f"| {r.slope:.2f} | {r.ici:.3f} | {r.e50:.3f} | {r.e90:.3f} |"
        for r in calibration.itertuples()
    )
    table = cv.subgroups.get(model, pd.DataFrame())
    groups = "\n".join(
        f"| {r.horizon} | {r.variable} | {r.group} | {r.n} | {r.events} | "
        + (
            "n/a (nobody followed to the horizon)"
            if pd.isna(r.km_efs)
            else f"{r.km_efs:.3f} ({r.km_lo:.3f}-{r.km_hi:.3f})"
        )
        + f" | {r.predicted_efs:.3f} | "
        + ("n/a" if pd.isna(r.difference) else f"{r.difference:+.3f}")
        + " |"
        for r in table.itertuples()
    )
    band = next(iter(cv.calibration[model].values())).band if cv.calibration.get(model) else "none"
    return f"""
## Calibration of the pooled out-of-fold predictions
Every patient is predicted once per repeat by the fold model that did not see them; each repeat's predictions are
assessed over all {N_PATIENTS} patients and the numbers are the mean over the repeats (per-repeat values and the
calibration curve with its band are in the JSON of `carrisk cv --out`; band: {band}). Observed = Kaplan-Meier EFS;
difference = mean predicted - observed (positive = too optimistic); O/E = observed / expected event probability;
slope, ICI, E50, E90 as above (Austin, Harrell & van Klaveren 2020).

| horizon | observed EFS | mean predicted | difference | O/E | slope | ICI | E50 | E90 |
|---|---|---|---|---|---|---|---|---|
{rows}

## Subgroup calibration (pooled out-of-fold predictions)
Kaplan-Meier EFS (95% CI, log-log) against the mean out-of-fold prediction by blinatumomab group, disease burden
(high = >= 5% marrow blasts, CNS3 or extramedullary disease) and their crossings with at least 10 patients.
`carrisk.subgroup_calibration` computes it for any predictions.

| horizon | variable | group | n | events by horizon | Kaplan-Meier EFS | mean predicted | difference |
|---|---|---|---|---|---|---|---|
{groups}
"""


def model_card(model, summary, oracle: float, folds: int, repeats: int) -> str:
    rows = "\n".join(
        f"| {label} | {summary[key]['mean']:.3f} | {summary[key]['mean_ci'][0]:.3f} - {summary[key]['mean_ci'][1]:.3f} "
        f"| {summary[key]['spread'][0]:.3f} - {summary[key]['spread'][1]:.3f} |"
        for key, label in METRICS
        if key in summary
    )
    versions = package_versions()
    return f"""# Model card: carrisk default EFS model (`models/default`)

**Trained on SYNTHETIC data. Not for clinical decisions.** This model has never seen a real patient. It exists
to demonstrate carrisk end to end and to give a working default for `carrisk predict`; its numbers say how well
a model can learn the *simulator*, not how children with B-ALL fare after CD19-CAR.

## Intended use
Research, teaching and software testing: showing what an EFS model built on the variables of Myers et al.
(J Clin Oncol 2022;40:932-944) looks like, with intervals and explanations. Not intended for prognosis,
treatment choice, trial eligibility or any decision about a patient.

## Model
Random survival forest (scikit-survival `RandomSurvivalForest` inside carrisk's pipeline: clinical feature
builders -> median imputation -> forest), {SHIPPED["n_estimators"]} trees, time grid of at most
{SHIPPED["max_times"]} event-time quantiles, hyper-parameters tuned by out-of-bag Harrell's C:
`{model.params}`. Predicts the EFS curve; 6- and 12-month EFS with 95% intervals (calibrated infinitesimal jackknife,
logit scale); a risk group (tertiles of the training patients' predicted 12-month EFS: cut-points
{model.risk_cutpoints[0]:.3f} and {model.risk_cutpoints[1]:.3f}); and exact TreeSHAP reasons.

## Data
{N_PATIENTS} synthetic patients from `carrisk.simulate_cohort(n={N_PATIENTS}, seed={COHORT_SEED})`, whose
generating model is calibrated to the study's published figures (CR rates and 6-month EFS by blinatumomab group,
CD19 dim/partial prevalence, relapse phenotypes; see `benchmarks/results/cohort_validation.md`). Parameters the
paper does not print (hazard ratios, prevalences of KMT2A, transplant, high burden) are assumptions listed in
`carrisk/simulate.py`. Events: {model.metadata["training_data"]["events"]}.

## Cross-validated performance (nested {folds}-fold x {repeats}, seed {MODEL_SEED})
Mean over outer folds, the 95% confidence interval of that mean (Nadeau-Bengio corrected repeated-CV t interval)
and the 2.5-97.5% spread of the fold estimates (not a confidence interval). The oracle Harrell's C (the true risk
of the simulator on this cohort, the best any model can do) is **{oracle:.3f}**.

| metric | mean | 95% CI of the mean | fold spread |
|---|---|---|---|
{rows}

Calibration: ICI and E50 (Austin, Harrell & van Klaveren 2020) are mean and median absolute differences between
predicted and smoothed observed event probability; slope 1 is ideal.

## Limitations
- Synthetic training data: effect sizes the paper does not print were chosen, not learned from patients.
- 420 patients, {model.metadata["training_data"]["events"]} events: intervals are wide for rare profiles
  (e.g. blinatumomab nonresponders with CD19-dim disease).
- Interval method: bias-corrected infinitesimal jackknife with empirical-Bayes calibration (Wager et al.);
  it reflects model uncertainty, not the patient's outcome.
- Extrapolation: ages outside 1-30 years, constructs other than the four of the study, and follow-up beyond
  about 5 years are outside the training data.

## Reproduce
`python -m benchmarks.build_default_model` (library versions at build time: scikit-survival
{versions["scikit-survival"]}, scikit-learn {versions["scikit-learn"]}, numpy {versions["numpy"]}, Python
{versions["python"]}).
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "models" / "default")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--card-only", action="store_true", help="rewrite MODEL_CARD.md of the existing bundle only")
    args = parser.parse_args()
    main(args.out, args.folds, args.repeats, args.card_only)
