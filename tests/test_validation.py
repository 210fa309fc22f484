"""Nested cross-validation: no leakage, reproducibility, dask equals local, JSON contract."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import RepeatedStratifiedKFold
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv
from typer.testing import CliRunner

from carrisk import simulate_cohort, survival_target
from carrisk.cli import app
from carrisk.datasets import load_public_dataset, load_survival_data
from carrisk.intervals import inbag_counts
from carrisk.models import make_pipeline
from carrisk.nonparametric import kaplan_meier_at
from carrisk.schema import SIX_MONTHS_DAYS
from carrisk.tuning import StratifiedGridSearch, tuned_model
from carrisk.validation import cross_validate, dataset_tau


@pytest.fixture(scope="module")
def small():
    table = load_public_dataset("gbsg2").sample(240, random_state=3).reset_index(drop=True)
    table["row_tag"] = np.arange(len(table))
    return load_survival_data(
        table,
        time_col="time",
        event_col="event",
        features=["age", "estrec", "pnodes", "progrec", "tsize", "horTh", "tgrade", "row_tag"],
    )


class RecordingTransformer(TransformerMixin, BaseEstimator):
    """Records which rows (by their row_tag) it was fitted on; passes data through."""

    seen: list = []

    def fit(self, X, y=None):
        RecordingTransformer.seen.append(set(X["row_tag"].astype(int)))
        return self

    def transform(self, X):
        return X


def test_no_test_fold_row_reaches_any_fitted_step(small):
    RecordingTransformer.seen = []
    pipe = make_pipeline("coxph", small.spec)
    pipe.steps.insert(0, ("record", RecordingTransformer()))
    result = cross_validate(small.records, small.y, {"coxph": pipe}, folds=3, repeats=1, seed=1, n_jobs=1)
    assert len(RecordingTransformer.seen) == 3
    from sklearn.model_selection import RepeatedStratifiedKFold

    splits = RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=1).split(np.zeros(240), small.y["event"])
    for seen, (train, test) in zip(RecordingTransformer.seen, splits):
        assert seen == set(train) and not seen & set(test)
    assert all(f["error"] is None for f in result.folds)


def test_inner_tuning_sees_only_the_outer_training_rows(small):
    RecordingTransformer.seen = []
    pipe = make_pipeline("coxnet", small.spec)
    pipe.steps.insert(0, ("record", RecordingTransformer()))
    search = StratifiedGridSearch(pipe, {"model__alpha_ratio": [0.3, 0.1]}, inner_folds=2)
    train = np.arange(160)
    search.fit(small.records.iloc[train], small.y[train])
    # 2 candidates x 2 inner folds + 1 refit, each on a subset of the 160 outer-training rows
    assert len(RecordingTransformer.seen) == 5
    assert all(seen <= set(train) for seen in RecordingTransformer.seen)
    assert max(len(s) for s in RecordingTransformer.seen[:-1]) < 160 and RecordingTransformer.seen[-1] == set(train)


def test_forest_tuning_scores_out_of_bag_on_the_training_rows_only(small):
    grid = {"model__min_samples_leaf": [5, 20], "model__max_features": ["sqrt", 0.5]}
    search = tuned_model("rsf", small.spec, grid, n_estimators=40, random_state=3)
    train = np.arange(180)
    records, y = small.records.iloc[train], small.y[train]
    search.fit(records, y)
    # Each candidate's score is Harrell's C of its out-of-bag risk against the original times, computed by hand.
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        pipe = make_pipeline(
            "rsf",
            small.spec,
            random_state=3,
            n_estimators=40,
            oob_score=True,
            **{k.removeprefix("model__"): v for k, v in params.items()},
        ).fit(records, y)
        forest = pipe[-1].forest_
        design = pipe[:-1].transform(records)
        inbag = inbag_counts(forest, len(train))  # (rows, trees) bootstrap counts
        per_tree = np.column_stack([tree.predict(design) for tree in forest.estimators_])
        oob = inbag == 0
        total, n_oob = (per_tree * oob).sum(axis=1), oob.sum(axis=1)
        risk = total / np.maximum(n_oob, 1)
        expected = concordance_index_censored(y["event"], y["time"], risk)[0]
        assert score == pytest.approx(expected, abs=1e-12)
    best = int(np.argmax(search.cv_results_["mean_test_score"]))
    assert search.best_params_ == search.cv_results_["params"][best]
    # The best candidate's forest, fitted on all 180 rows, is the model (no refit on a subset, no test rows).
    assert search.best_estimator_[-1].forest_.n_features_in_ == pipe[:-1].transform(records).shape[1]
    refit = make_pipeline(
        "rsf",
        small.spec,
        random_state=3,
        n_estimators=40,
        **{k.removeprefix("model__"): v for k, v in search.best_params_.items()},
    ).fit(records, y)
    holdout = small.records.iloc[180:]
    np.testing.assert_allclose(search.predict(holdout), refit.predict(holdout))


def test_fold_metrics_equal_scikit_survival_on_the_same_split(small):
    result = cross_validate(
        small.records, small.y, {"coxph": make_pipeline("coxph", small.spec)}, folds=3, repeats=1, seed=0, n_jobs=1
    )
    from sklearn.model_selection import RepeatedStratifiedKFold

    train, test = next(
        RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=0).split(np.zeros(240), small.y["event"])
    )
    pipe = make_pipeline("coxph", small.spec).fit(small.records.iloc[train], small.y[train])
    design = pipe[:-1].transform(small.records.iloc[test])
    reference = CoxPHSurvivalAnalysis(alpha=1e-4, ties="breslow").fit(
        pipe[:-1].transform(small.records.iloc[train]), small.y[train]
    )
    risk = reference.predict(design)
    expected = concordance_index_censored(small.y["event"][test], small.y["time"][test], risk)[0]
    assert result.folds[0]["metrics"]["harrell_c"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.slow
def test_same_seed_same_results_and_dask_equals_local(small):
    models = {
        "rsf": tuned_model(
            "rsf", small.spec, {"model__min_samples_leaf": [10, 20]}, inner_folds=2, n_estimators=20, random_state=0
        )
    }
    local = cross_validate(small.records, small.y, models, folds=3, repeats=1, seed=5, n_jobs=1)
    again = cross_validate(small.records, small.y, models, folds=3, repeats=1, seed=5, n_jobs=2)
    for a, b in zip(local.folds, again.folds):
        assert a["metrics"]["harrell_c"] == b["metrics"]["harrell_c"] and a["params"] == b["params"]
        assert a["metrics"] == pytest.approx(b["metrics"], rel=1e-9, abs=1e-12)
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        remote = cross_validate(
            small.records,
            small.y,
            models,
            folds=3,
            repeats=1,
            seed=5,
            backend="dask",
            scheduler=cluster.scheduler_address,
        )
    # concordance and the chosen parameters are identical; calibration fits (lifelines, threaded BLAS) agree to 1e-9
    assert [f["metrics"]["harrell_c"] for f in local.folds] == [f["metrics"]["harrell_c"] for f in remote.folds]
    for a, b in zip(local.folds, remote.folds):
        assert a["metrics"].keys() == b["metrics"].keys()
        assert a["metrics"] == pytest.approx(b["metrics"], rel=1e-9, abs=1e-12)
    assert [f["params"] for f in local.folds] == [f["params"] for f in remote.folds]


def test_too_few_events_for_the_folds_is_a_clear_error(small):
    y = small.y.copy()
    y["event"][:] = False
    y["event"][:2] = True
    with pytest.raises(ValueError, match="at least 5 events"):
        cross_validate(small.records, y, ["coxph"], folds=5, repeats=1)


def test_cv_cli_writes_the_json_contract(tmp_path, small):
    path = tmp_path / "d.csv"
    small.records.drop(columns=["row_tag"]).to_csv(path, index=False)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        app,
        [
            "cv",
            str(path),
            "--time-col",
            "time",
            "--event-col",
            "event",
            "--models",
            "coxnet,coxph",
            "--folds",
            "3",
            "--repeats",
            "1",
            "--json",
            str(out),
            "--quiet",
            "--n-jobs",
            "1",
            "--out",
            str(tmp_path / "report"),
            "--calibration-bootstrap",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    written = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"cv.json", "cv.txt", "calibration.csv", "calibration_coxnet.png"} <= written
    assert "subgroups.csv" not in written  # generic mode: no blinatumomab or burden columns
    assert "95% confidence interval of the cross-validated mean" in result.output
    assert "harrell_c" in result.output and "coxnet" in result.output
    doc = json.loads(out.read_text())
    block = doc["models"]["coxnet"]["metrics"]["harrell_c"]
    assert set(block) >= {"mean", "sd", "spread", "mean_ci", "ci", "folds"} and len(block["folds"]) == 3
    assert doc["schema_version"] == 2 and doc["models"]["coxnet"]["subgroups"] == []  # generic mode: no subgroups
    assert {"auc_6mo", "auc_12mo", "ibs", "uno_c", "brier_6mo", "ici_6mo", "e50_6mo", "calibration_slope_6mo"} <= set(
        doc["models"]["coxnet"]["metrics"]
    )
    assert doc["seeds"]["outer_cv"] == 0 and doc["data"]["rows"] == 240 and len(doc["data"]["sha256"]) == 64
    assert "scikit-survival" in doc["versions"]
    assert doc["models"]["coxnet"]["params"]["most_chosen"].keys() == {"l1_ratio", "alpha_ratio"}


def test_dataset_tau_is_the_quantile_lowered_below_every_training_folds_longest_follow_up():
    y = Surv.from_arrays(event=np.ones(10, dtype=bool), time=np.arange(1.0, 11.0))
    assert dataset_tau(y, [np.arange(10)]) == pytest.approx(np.quantile(np.arange(1.0, 11.0), 0.8))  # 8.2
    # one training fold only reaches day 8: the 80th percentile (8.2) is lowered to the largest time below 8
    assert dataset_tau(y, [np.arange(10), np.arange(8)]) == 7.0


@pytest.fixture(scope="module")
def simulated_cv():
    cohort = simulate_cohort(n=240, seed=2)
    y = survival_target(cohort.records)
    models = {"coxnet": make_pipeline("coxnet", alpha_ratio=0.1, l1_ratio=0.5)}
    result = cross_validate(cohort.records, y, models, folds=3, repeats=2, seed=4, n_jobs=1, calibration_bootstrap=20)
    return cohort, y, result


def test_uno_tau_is_chosen_once_for_the_data_set_and_valid_in_every_fold(simulated_cv):
    _, y, result = simulated_cv
    tau = result.settings["uno_tau"]
    assert {f["metrics"]["uno_tau"] for f in result.folds} == {tau}
    assert "one tau" in result.settings["uno_tau_rule"]
    splits = RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=4).split(np.zeros(240), y["event"])
    train_folds = [train for train, _ in splits]
    assert tau == dataset_tau(y, train_folds)
    assert all(tau < y["time"][train].max() for train in train_folds)


def test_calibration_pools_each_repeats_out_of_fold_predictions(simulated_cv):
    _, y, result = simulated_cv
    for repeat in range(2):
        held_out = np.concatenate([f["test_index"] for f in result.folds if f["repeat"] == repeat])
        assert np.array_equal(np.sort(held_out), np.arange(240))  # every patient predicted once per repeat
    six = result.calibration["coxnet"]["6mo"]
    assert len(six.per_repeat) == 2
    # Both repeats are assessed on all 240 patients: the Kaplan-Meier EFS is the whole cohort's
    observed = kaplan_meier_at(y["event"], y["time"], SIX_MONTHS_DAYS)[0]
    np.testing.assert_allclose(six.per_repeat["observed_efs"], observed)
    doc = json.loads(json.dumps(result.to_dict(), default=float))
    assert doc["schema_version"] == 2 and doc["settings"]["mean_ci"]["method"] == "nadeau-bengio"
    block = doc["models"]["coxnet"]
    assert set(block["calibration"]) == {"6mo", "12mo"}
    assert {"difference", "oe_ratio", "slope", "ici", "e50", "e90"} <= set(block["calibration"]["6mo"]["summary"])
    groups = {(row["variable"], row["group"]) for row in block["subgroups"]}
    assert {("blinatumomab", "naive"), ("disease burden", "high"), ("all", "all patients")} <= groups
    harrell = block["metrics"]["harrell_c"]
    assert harrell["ci"] == harrell["spread"] and harrell["mean_ci"][0] < harrell["mean"] < harrell["mean_ci"][1]
    assert "confidence interval of the cross-validated mean" in result.to_text()
    assert "nonresponder" in result.report_text()


def test_cv_report_directory_holds_json_text_csv_and_plots(simulated_cv, tmp_path):
    _, _, result = simulated_cv
    paths = {p.name for p in result.write_report(tmp_path, "heading")}
    assert paths == {"cv.json", "cv.txt", "calibration.csv", "subgroups.csv", "calibration_coxnet.png"}
    subgroups = pd.read_csv(tmp_path / "subgroups.csv")
    assert {"model", "horizon", "variable", "group", "n", "events", "km_efs", "km_lo", "km_hi"} <= set(subgroups)
    assert (tmp_path / "cv.txt").read_text().startswith("heading\n")
