"""The truth benchmark's ceiling: the generating model's form refitted by maximum likelihood recovers the truth."""

import numpy as np

from benchmarks.truth import CR_COVARIATES, oracle_form_survival, true_covariates
from carrisk import simulate_cohort, survival_target
from carrisk.schema import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS


def test_true_covariates_are_the_latent_groups_of_the_same_patients():
    cohort = simulate_cohort(300, seed=5)
    x = true_covariates(300, 5)
    assert x.shape == (300, 11) and not np.isnan(x).any()
    truth = cohort.truth
    np.testing.assert_array_equal(x[:, 0], truth["true_blina_group"] == "nonresponder")
    np.testing.assert_array_equal(x[:, CR_COVARIATES.index("cd19_dim_partial")], truth["true_cd19_dim_partial"])
    np.testing.assert_array_equal(x[:, CR_COVARIATES.index("high_burden")], truth["true_high_burden"])


def test_oracle_form_refitted_on_a_large_cohort_recovers_the_true_efs():
    train, test = simulate_cohort(4000, seed=1), simulate_cohort(1000, seed=2)
    times = np.array([SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS])
    pred = oracle_form_survival(
        true_covariates(4000, 1), survival_target(train.records), true_covariates(1000, 2), times
    )
    truth = test.truth[["true_efs_6mo", "true_efs_12mo"]].to_numpy()
    rmse = np.sqrt(np.mean((pred - truth) ** 2, axis=0))
    assert np.all(rmse < 0.03), rmse  # the truth's sd across patients is about 0.15
    assert np.all(pred[:, 1] <= pred[:, 0])


def test_the_benchmark_scores_what_predict_efs_gives_the_user():
    """Candidates are scored on carrisk's own predictions, unknown levels marginalised, not on the raw pipeline."""
    from benchmarks.truth import TRAIN_SEED_BASE, fit_replicate
    from carrisk import fit_efs_model
    from carrisk.schema import OUTCOME_COLUMNS

    test = simulate_cohort(400, seed=8)
    features = test.records.drop(columns=list(OUTCOME_COLUMNS))
    features.loc[features.index[:5], ["blina_exposed", "blina_response"]] = ["yes", "not evaluable"]
    point = fit_replicate(1, 300, ("average",), features, n_bootstrap=0)["average"]["point"]
    train = simulate_cohort(300, seed=TRAIN_SEED_BASE + 1).records
    model = fit_efs_model(train, survival_target(train), "average", seed=1, n_bootstrap=2, causes=False)
    table = model.predict_efs(features, [SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS], top=0)
    np.testing.assert_allclose(point, table[["efs_6mo", "efs_12mo"]].to_numpy(), rtol=1e-10)
    assert all("exposed_unknown" in note for note in table["assumptions"][:5])
