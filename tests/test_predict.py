"""Per-patient prediction: bundle round trip, intervals, invalid rows, clinical direction, CLI contracts."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sksurv.ensemble import RandomSurvivalForest
from typer.testing import CliRunner

from carrisk import fit_efs_model, load_model, save_model, simulate_cohort, survival_target
from carrisk.cli import app
from carrisk.intervals import inbag_counts
from carrisk.schema import RecordError
from carrisk.shipped import default_model_path
from carrisk.units import SIX_MONTHS_DAYS

DEFAULT_MODEL = default_model_path()

SCALARS = ["efs_6mo", "efs_6mo_lo", "efs_6mo_hi", "efs_12mo", "efs_12mo_lo", "efs_12mo_hi"]


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(n=300, seed=11)


@pytest.fixture(scope="module")
def forest_model(cohort):
    y = survival_target(cohort.records)
    return fit_efs_model(
        cohort.records, y, "rsf", seed=0, synthetic=True, n_estimators=60, min_samples_leaf=10, grid={}, causes=False
    )


@pytest.fixture(scope="module")
def cox_model(cohort):
    y = survival_target(cohort.records)
    return fit_efs_model(cohort.records, y, "coxnet", seed=0, synthetic=True, grid={}, n_bootstrap=30, causes=False)


def test_save_load_round_trip_gives_identical_predictions(tmp_path, forest_model, example_records):
    before = forest_model.predict_efs(example_records)
    save_model(forest_model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    after = loaded.predict_efs(example_records)
    pd.testing.assert_frame_equal(
        before.drop(columns=["top_reasons", "curve"]), after.drop(columns=["top_reasons", "curve"])
    )
    assert before["top_reasons"].tolist() == after["top_reasons"].tolist()
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["model"]["synthetic_training_data"] is True
    assert manifest["model"]["training_data"]["rows"] == 300
    assert "scikit-survival" in manifest["versions"]


def test_predictions_are_ordered_probabilities_with_intervals(forest_model, cox_model, example_records):
    for model in (forest_model, cox_model):
        table = model.predict_efs(example_records)
        assert table["patient_id"].tolist() == example_records["patient_id"].tolist()
        values = table[SCALARS].to_numpy()
        assert np.all((values >= 0) & (values <= 1))
        assert np.all(table["efs_6mo_lo"] <= table["efs_6mo"]) and np.all(table["efs_6mo"] <= table["efs_6mo_hi"])
        assert np.all(table["efs_12mo"] <= table["efs_6mo"] + 1e-12)
        assert np.all(table["efs_6mo_hi"] - table["efs_6mo_lo"] > 0)
        assert set(table["risk_group"]) <= {"low", "intermediate", "high"}
        curve = table["curve"].iloc[0]
        assert np.all(np.diff(curve["efs"]) <= 1e-12) and len(curve["days"]) == len(curve["efs"])


def test_large_training_sets_fit_the_variance_prior_on_a_seeded_subset(monkeypatch, cohort, forest_model):
    # Registry-size forests keep only MAX_REFERENCE training rows for the empirical-Bayes prior (the IJ covariance
    # of all 100,000 rows against themselves would need 75 GB); small ones keep every row, as before.
    from carrisk import intervals

    assert len(forest_model.reference) == len(cohort.records)
    monkeypatch.setattr(intervals, "MAX_REFERENCE", 120)
    y = survival_target(cohort.records)
    kwargs = dict(seed=0, synthetic=True, n_estimators=60, min_samples_leaf=10, grid={}, causes=False)
    model = fit_efs_model(cohort.records, y, "rsf", **kwargs)
    np.testing.assert_array_equal(model.reference, forest_model.reference[intervals.reference_rows(300, 0, 120)])
    assert len(model.reference) == 120 and model.variance_priors  # the priors were fitted from the subset
    table = model.predict_efs(cohort.records.head(20))
    assert np.all(table["efs_6mo_lo"] < table["efs_6mo"]) and np.all(table["efs_6mo"] < table["efs_6mo_hi"])
    horizon = next(iter(model.variance_priors))
    assert not np.allclose(model.variance_priors[horizon].g, forest_model.variance_priors[horizon].g)


def test_forest_intervals_inflated_by_jackknife_noise_are_flagged(cohort, forest_model):
    # 300 rows and 20 trees (15 rows per tree): the bias-corrected jackknife's Monte-Carlo noise inflates the
    # intervals (the same happens at 100,000 rows and 200 trees); 300 rows and 60 trees (5 per tree) is not flagged.
    assert "interval_warning" not in forest_model.metadata and forest_model.metadata["interval_noise_to_signal"] > 0
    y = survival_target(cohort.records)
    kwargs = dict(seed=0, synthetic=True, min_samples_leaf=10, grid={}, causes=False)
    with pytest.warns(UserWarning, match="inflated by Monte-Carlo noise"):
        few = fit_efs_model(cohort.records, y, "rsf", n_estimators=20, **kwargs)
    assert "one tree per 10 training rows" in few.metadata["interval_warning"]
    many = fit_efs_model(cohort.records, y, "rsf", n_estimators=400, **kwargs)
    assert "interval_warning" not in many.metadata
    assert few.metadata["interval_noise_to_signal"] > many.metadata["interval_noise_to_signal"]

    def width(model):
        table = model.predict_efs(cohort.records.head(30))
        return (table["efs_6mo_hi"] - table["efs_6mo_lo"]).mean()

    assert width(few) > width(many)  # the noise widens the intervals


def test_little_bags_forest_intervals(cohort, tmp_path):
    # ci_group_size=2 reaches the hist forest through fit_efs_model's params; the intervals are grf's little bags
    # (no jackknife prior fitted, no rows-per-tree warning), recorded in the metadata.
    from carrisk.intervals import little_bags_variance

    y = survival_target(cohort.records)
    kwargs = dict(seed=0, synthetic=True, min_samples_leaf=10, grid={}, causes=False, engine="hist")
    model = fit_efs_model(cohort.records, y, "rsf", n_estimators=20, ci_group_size=2, **kwargs)
    assert model.estimator.forest_.ci_group_size_ == 2 and model.ci_group_size == 2
    assert model.metadata["interval_method"].startswith("little bags")
    assert "interval_warning" not in model.metadata and "interval_noise_to_signal" not in model.metadata
    assert model.variance_priors == {} and model.reference is None
    records = cohort.records.head(30)
    table = model.predict_efs(records)
    assert np.all(table["efs_6mo_lo"] < table["efs_6mo"]) and np.all(table["efs_6mo"] < table["efs_6mo_hi"])
    design = model._design(records)
    leaves = model._leaves(design)
    times = np.array([SIX_MONTHS_DAYS])
    per_tree = model._per_tree_survival(leaves, times)[:, :, 0]
    point = per_tree.mean(axis=0)[:, None]
    lo, hi = model._intervals(design, times, point, leaves)
    p = np.clip(point[:, 0], 1e-4, 1 - 1e-4)
    se_logit = np.sqrt(little_bags_variance(per_tree, 2)) / (p * (1 - p))
    for bound, sign in ((lo, -1), (hi, 1)):
        expected = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + sign * 1.959963984540054 * se_logit)))
        np.testing.assert_allclose(bound[:, 0], expected, rtol=1e-9)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.ci_group_size == 2
    pd.testing.assert_frame_equal(
        loaded.predict_efs(records, top=0).drop(columns=["curve"]),
        model.predict_efs(records, top=0).drop(columns=["curve"]),
    )
    with pytest.raises(ValueError, match="multiple of ci_group_size"):
        fit_efs_model(cohort.records, y, "rsf", n_estimators=21, ci_group_size=2, **kwargs)


def test_top_reasons_are_shap_values_that_add_up(forest_model, example_records):
    result = forest_model.explain(example_records)
    table = forest_model.predict_efs(example_records, top=100)
    np.testing.assert_allclose(result.predictions, table["efs_6mo"], atol=1e-9)
    np.testing.assert_allclose(np.ravel(result.base_values) + result.values.sum(axis=1), result.predictions, atol=1e-6)
    effects = [sum(r["effect"] for r in reasons) for reasons in table["top_reasons"]]
    np.testing.assert_allclose(np.ravel(result.base_values) + np.array(effects), table["efs_6mo"], atol=1e-6)


def test_inbag_reconstruction_matches_the_forests_out_of_bag_predictions(cohort):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    y = survival_target(cohort.records.iloc[:150])
    forest = RandomSurvivalForest(n_estimators=25, min_samples_leaf=10, oob_score=True, random_state=3).fit(X, y)
    inbag = inbag_counts(forest, len(X))
    assert inbag.sum(axis=0).tolist() == [150] * 25
    per_tree = np.stack([tree.predict(X.astype(np.float32)) for tree in forest.estimators_])  # (B, n)
    out_of_bag = inbag.T == 0
    oob = (per_tree * out_of_bag).sum(axis=0) / out_of_bag.sum(axis=0)
    np.testing.assert_allclose(oob, forest.oob_prediction_, rtol=1e-10)


def test_invalid_records_list_every_problem(forest_model, example_records):
    bad = example_records.copy()
    bad.loc[1, "cd19_expression"] = "purple"
    bad.loc[4, "age_years"] = "55"
    with pytest.raises(RecordError) as info:
        forest_model.predict_efs(bad)
    assert {(p.row, p.column) for p in info.value.problems} == {(2, "cd19_expression"), (5, "age_years")}


def test_skip_invalid_accounts_for_every_row(forest_model, example_records):
    bad = example_records.copy()
    bad.loc[1, "cd19_expression"] = "purple"
    bad.loc[4, "age_years"] = "55"
    table = forest_model.predict_efs(bad, skip_invalid=True)
    rejected = pd.DataFrame(table.attrs["rejected"])
    kept = set(table["patient_id"])
    dropped = set(rejected["patient_id"])
    assert kept | dropped == set(bad["patient_id"]) and not kept & dropped
    assert table["patient_id"].tolist() == [p for p in bad["patient_id"] if p in kept]  # input order kept


def test_default_model_moves_in_the_clinical_direction(example_records):
    model = load_model(DEFAULT_MODEL)
    assert model.metadata["synthetic_training_data"] is True
    base = example_records[example_records["patient_id"].isin(["EX-01", "EX-04", "EX-13", "EX-15"])].copy()
    naive = base.assign(blina_exposed="no", blina_response="")
    nonresponder = base.assign(blina_exposed="yes", blina_response="refractory")
    high_burden = naive.assign(marrow_blasts_pct="60%")
    dim = naive.assign(cd19_expression="dim")
    efs = {
        name: model.predict_efs(frame, top=0)["efs_6mo"].to_numpy()
        for name, frame in [("naive", naive), ("nr", nonresponder), ("high", high_burden), ("dim", dim)]
    }
    assert np.all(efs["nr"] < efs["naive"])
    assert np.all(efs["high"] < efs["naive"])
    assert np.all(efs["dim"] < efs["naive"])


def test_default_model_is_small_and_has_a_model_card():
    payload = DEFAULT_MODEL / "model.joblib"
    assert payload.stat().st_size < 20 * 1024**2
    card = (DEFAULT_MODEL / "MODEL_CARD.md").read_text()
    assert "synthetic" in card.lower() and "not for clinical" in card.lower()


def test_predict_cli_json_contract(tmp_path, forest_model, example_records):
    save_model(forest_model, tmp_path / "m")
    json_path, csv_path = tmp_path / "p.json", tmp_path / "p.csv"
    result = CliRunner().invoke(
        app,
        [
            "predict",
            str(Path(__file__).parents[1] / "carrisk/data/example_patients.csv"),
            "--model",
            str(tmp_path / "m"),
            "--json",
            str(json_path),
            "--out",
            str(csv_path),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(json_path.read_text())
    assert [d["patient_id"] for d in doc] == example_records["patient_id"].tolist()
    assert set(doc[0]) >= {"patient_id", *SCALARS, "risk_group", "top_reasons", "curve"}
    assert set(doc[0]["top_reasons"][0]) == {"variable", "value", "effect"}
    assert set(doc[0]["curve"]) == {"days", "efs"}
    table = pd.read_csv(csv_path)
    assert list(table["patient_id"]) == example_records["patient_id"].tolist() and "curve" not in table


def test_predict_cli_skip_invalid_writes_rejected_rows(tmp_path, forest_model, example_records):
    save_model(forest_model, tmp_path / "m")
    bad = example_records.copy()
    bad.loc[2, "sex"] = "Q"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    runner = CliRunner()
    failed = runner.invoke(app, ["predict", str(tmp_path / "bad.csv"), "--model", str(tmp_path / "m")])
    assert failed.exit_code == 1 and "sex" in failed.output
    ok = runner.invoke(
        app,
        [
            "predict",
            str(tmp_path / "bad.csv"),
            "--model",
            str(tmp_path / "m"),
            "--skip-invalid",
            "--out",
            str(tmp_path / "p.csv"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(bad) - 1
    rejected = pd.read_csv(tmp_path / "p.rejected.csv")
    assert rejected["patient_id"].tolist() == ["EX-03"] and rejected["column"].tolist() == ["sex"]


@pytest.mark.slow
def test_explain_cli_json_adds_up_and_writes_plots(tmp_path, cox_model):
    save_model(cox_model, tmp_path / "m")
    patients = Path(__file__).parents[1] / "carrisk/data/example_patients.csv"
    result = CliRunner().invoke(
        app,
        [
            "explain",
            str(patients),
            "--model",
            str(tmp_path / "m"),
            "--out",
            str(tmp_path / "plots"),
            "--json",
            str(tmp_path / "e.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "e.json").read_text())
    for item in doc:
        assert item["base_value"] + sum(item["contributions"].values()) == pytest.approx(item["prediction"], abs=1e-6)
        assert "blina_status" in item["contributions"]  # clinical variables, not dummy columns
    assert (tmp_path / "plots" / "beeswarm.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "waterfall_EX-01.png").exists()


def test_metadata_records_how_the_hyper_parameters_were_chosen(cohort, forest_model, cox_model):
    assert forest_model.metadata["tuning"]["method"].startswith("none")
    assert cox_model.metadata["tuning"]["method"].startswith("none")
    y = survival_target(cohort.records)
    tuned = fit_efs_model(
        cohort.records, y, "rsf", seed=0, n_estimators=30, grid={"model__min_samples_leaf": [10, 30]}, causes=False
    )
    assert tuned.metadata["tuning"] == {"method": "out-of-bag", "scoring": "harrell"}
    assert tuned.params["min_samples_leaf"] in (10, 30)


def test_risk_groups_cut_predicted_12_month_efs_at_the_tertiles_low_inclusive_above():
    from carrisk.predict import risk_groups

    efs_12mo = np.array([0.2, 0.4, 0.5, 0.59, 0.6, 0.9])
    np.testing.assert_array_equal(
        risk_groups(efs_12mo, (0.4, 0.6)), ["high", "intermediate", "intermediate", "intermediate", "low", "low"]
    )


def test_explanation_data_are_the_patients_values_not_the_standardised_design(example_records):
    from carrisk import load_default_model

    model = load_default_model()
    result = model.explain(example_records)
    shown = model.display_values(example_records)
    ages = pd.to_numeric(example_records["age_years"]).to_numpy()
    np.testing.assert_allclose(result.data["age_years"].to_numpy(dtype=float), ages)
    assert result.data["blina_status"].tolist() == shown["blina_status"].tolist()
    assert result.data["prior_hsct"].tolist() == shown["prior_hsct"].tolist()
    numeric = pd.to_numeric(example_records["marrow_blasts_pct"], errors="coerce").to_numpy()
    kept = np.isfinite(numeric)
    np.testing.assert_allclose(result.data["marrow_blasts_pct"].to_numpy(dtype=float)[kept], numeric[kept], atol=1e-9)
    table = result.to_frame()
    first = table[(table["row"] == 0) & (table["feature"] == "blina_status")]["value"].item()
    assert first == shown["blina_status"].iloc[0]


def test_explaining_beyond_the_last_training_time_is_refused_and_predicting_says_so(example_records):
    from carrisk import load_default_model

    model = load_default_model()
    last = float(model.time_grid[-1])
    with pytest.raises(ValueError, match=f"ends at day {last:g}"):
        model.explain(example_records, horizon=last + 1)
    late = model.predict_efs(example_records.head(2), horizons=[182.625, last + 30], top=0)  # carried forward
    at_end = model.predict_efs(example_records.head(2), horizons=[last], top=0)
    np.testing.assert_array_equal(late.iloc[:, 4].to_numpy(dtype=float), at_end.iloc[:, 1].to_numpy(dtype=float))
    assert all("past this model's follow-up" in a for a in late["assumptions"])
    with pytest.raises(ValueError, match="positive number of days"):
        model.explain(example_records, horizon=float("nan"))
    assert (
        model.predict_efs(example_records.head(1), horizons=[last], top=0)[f"efs_{round(last / 30.4375)}mo"]
        .notna()
        .all()
    )
