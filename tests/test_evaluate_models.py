"""Models scored on one cohort and the same resamples (carrisk.evaluate_models; `evaluate --model A --model B`)."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from _cli import run_cli

import carrisk
from carrisk.decision_curves import DEFAULT_THRESHOLDS, net_benefit
from carrisk.evaluate import (
    DIFFERENCE_MEASURES,
    NET_BENEFIT_THRESHOLDS,
    ModelComparisonError,
    _slope_by_newton,
    calibration_slope,
    comparison_names,
    evaluate_model,
    evaluate_models,
    paired_bootstrap_p_value,
)
from carrisk.metrics import harrell_c
from carrisk.nonparametric import kaplan_meier_survival_at
from carrisk.report import write_comparison_report, write_evaluation_report
from carrisk.simulate import EXTERNAL_CENTRES, SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS, simulate_cohort, true_survival
from tests._browser import chromium, console_errors

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = {"n_bootstrap": 20, "n_bootstrap_calibration": 4, "seed": 3}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The shipped model and its update on a small simulated external centre, saved and loaded as a bundle."""
    shipped = carrisk.load_model(DEFAULT_MODEL)
    centre = simulate_cohort(300, seed=71, **EXTERNAL_CENTRES["baseline_and_effects"]).records
    updated = carrisk.update_model(shipped, centre, source="centre_a.csv").model
    bundle = tmp_path_factory.mktemp("updated") / "centre-a"
    carrisk.save_model(updated, bundle)
    return SimpleNamespace(shipped=shipped, updated=carrisk.load_model(bundle), bundle=bundle)


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(200, seed=72, **EXTERNAL_CENTRES["baseline_and_effects"]).records


@pytest.fixture(scope="module")
def comparison(models, cohort):
    names = comparison_names([models.shipped, models.updated], ["default", "centre-a"])
    return evaluate_models(dict(zip(names, [models.shipped, models.updated])), cohort, source="b.csv", **ARGS)


@pytest.fixture(scope="module")
def report_path(comparison, tmp_path_factory):
    return write_comparison_report(comparison, tmp_path_factory.mktemp("comparison") / "report.html")


def test_each_model_is_evaluated_exactly_as_alone(models, cohort, comparison):
    alone = evaluate_model(models.updated, cohort, source="b.csv", **ARGS)
    mine = comparison.results[comparison.names[1]]
    for table in ("summary", "calibration_curves", "subgroups", "case_mix", "decision_curves", "predictions"):
        pd.testing.assert_frame_equal(getattr(mine, table), getattr(alone, table), check_exact=True)
    assert {k: v for k, v in mine.info.items() if k != "created"} == {
        k: v for k, v in alone.info.items() if k != "created"
    }


def test_a_model_compared_with_itself_differs_by_exactly_zero(models, cohort, tmp_path):
    same = evaluate_models(
        {"=a": models.shipped, "b": models.shipped}, cohort, n_bootstrap=8, n_bootstrap_calibration=3
    )
    table = same.differences
    assert set(table["measure"]) == set(DIFFERENCE_MEASURES)
    assert len(table) == 2 + 2 * (len(DIFFERENCE_MEASURES) - 2)  # C statistics once, the rest at 6 and 12 months
    for column in ("estimate", "lower", "upper"):
        assert (table[column] == 0.0).all(), table[["measure", "horizon", column]]
    assert (table["p_value"] == 1.0).all(), table[["measure", "horizon", "p_value"]]
    assert (table["n_resamples"] > 0).all()
    benefit = same.net_benefit_differences
    assert len(benefit) == 2 * len(NET_BENEFIT_THRESHOLDS)
    for column in ("estimate", "lower", "upper", "per_100_patients", "interventions_avoided_per_100"):
        assert (benefit[column] == 0.0).all(), benefit[["horizon", "threshold", column]]
    assert (benefit["p_value"] == 1.0).all() and set(benefit["verdict"]) == {"no clear difference"}
    curves = same.net_benefit_difference_curves
    assert len(curves) == 2 * len(DEFAULT_THRESHOLDS)
    assert (curves[["estimate", "lower", "upper"]].fillna(0.0) == 0.0).all().all()
    verdicts = table.set_index("measure")["verdict"]
    assert set(verdicts.drop("predicted_event_prob")) == {"no clear difference"}
    assert set(verdicts.loc[["predicted_event_prob"]]) == {""}
    # the tables are written by the project's spreadsheet-safe CSV writer: a name like a formula is neutralised
    paths = same.write(tmp_path, plots=False)
    for key in ("comparison", "differences"):
        text = paths[key].read_text()
        assert "'=a" in text and not re.search(r"(^|,)=a", text, flags=re.MULTILINE), key
    assert (tmp_path / "a" / "summary.csv").exists() and (tmp_path / "b" / "summary.csv").exists()


def test_differences_are_those_of_the_separate_figures_on_the_same_resamples(models, cohort, comparison):
    original, updated = (comparison.results[name] for name in comparison.names)
    for row in comparison.differences.to_dict("records"):
        expected = updated.value(row["measure"], row["horizon"]) - original.value(row["measure"], row["horizon"])
        assert row["estimate"] == expected, row
    # recompute the resamples independently: the same generator, seed and size as documented
    event = cohort["efs_event"].to_numpy(dtype=bool)
    days = cohort["efs_days"].to_numpy(dtype=float)
    rng = np.random.default_rng(ARGS["seed"])
    indices = [rng.integers(0, event.size, event.size) for _ in range(ARGS["n_bootstrap"])]
    resampled = comparison.resampled.set_index(["model", "measure", "horizon", "resample"])["value"].sort_index()
    by_model = {}
    for name, result in comparison.results.items():
        surv = result.predictions["efs_12mo"].to_numpy()
        values = {"harrell_c": [], "citl": [], "calibration_slope": []}
        for b, index in enumerate(indices):
            values["harrell_c"].append(harrell_c(event[index], days[index], 1.0 - surv[index]))
            observed = 1.0 - kaplan_meier_survival_at(event[index], days[index], TWELVE_MONTHS_DAYS)
            values["citl"].append(observed - np.mean(1.0 - surv[index]))
            values["calibration_slope"].append(calibration_slope(event[index], days[index], surv[index])[0])
            assert resampled[(name, "harrell_c", "", b)] == pytest.approx(values["harrell_c"][-1], abs=1e-12)
            assert resampled[(name, "citl", "12mo", b)] == pytest.approx(values["citl"][-1], abs=1e-12)
            # lifelines stops up to ~2e-7 short of the maximum on heavily tied resamples (see _slope_by_newton)
            assert resampled[(name, "calibration_slope", "12mo", b)] == pytest.approx(
                values["calibration_slope"][-1], abs=1e-6
            )
        by_model[name] = {key: np.asarray(value) for key, value in values.items()}
        # each model's own bootstrap interval comes from the same resampled values
        own = np.quantile(by_model[name]["citl"], [0.025, 0.975])
        assert result.interval("citl", "12mo") == pytest.approx(tuple(own), abs=1e-12)
        ici = resampled.loc[(name, "ici", "12mo")].to_numpy()
        ici = ici[np.isfinite(ici)]
        assert result.interval("ici", "12mo") == pytest.approx(tuple(np.quantile(ici, [0.025, 0.975])), abs=1e-12)
    for measure, horizon in (("harrell_c", ""), ("citl", "12mo"), ("calibration_slope", "12mo")):
        paired = by_model[comparison.names[1]][measure] - by_model[comparison.names[0]][measure]
        expected = np.quantile(paired, [0.025, 0.975])
        assert comparison.difference_interval(measure, horizon) == pytest.approx(tuple(expected), abs=1e-6)
    # pairing: the difference's interval is far narrower than the models' own intervals (shared variation cancels)
    own_width = np.subtract(*original.interval("citl", "12mo")[::-1])
    paired_width = np.subtract(*comparison.difference_interval("citl", "12mo")[::-1])
    assert paired_width < own_width / 3


def test_the_fast_slope_is_the_lifelines_slope(models, cohort):
    event = cohort["efs_event"].to_numpy(dtype=bool)
    days = cohort["efs_days"].to_numpy(dtype=float)
    assert (days == 28).sum() > 5  # tied events (no remission by day 28): Efron's correction matters
    surv = models.shipped.predict_survival(cohort, [182.625, TWELVE_MONTHS_DAYS])
    for k in range(2):
        assert _slope_by_newton(event, days, surv[:, k]) == pytest.approx(
            calibration_slope(event, days, surv[:, k])[0], abs=1e-8
        )
    assert np.isnan(_slope_by_newton(event, days, np.full(event.size, 0.5)))


def test_an_update_is_named_after_its_parent(models):
    level = models.updated.level.replace("_", " ")
    assert comparison_names([models.shipped, models.updated], ["default", "centre-a"]) == [
        "original model",
        f"updated model ({level})",
    ]
    assert comparison_names([models.updated, models.shipped], ["centre-a", "default"]) == ["centre-a", "default"]
    assert comparison_names([models.shipped, models.shipped], ["default", "default"]) == ["default", "default, model 2"]


def _generic(time_col: str, event_col: str) -> SimpleNamespace:
    spec = SimpleNamespace(clinical=False, time_col=time_col, event_col=event_col, input_columns=["age"])
    return SimpleNamespace(features=SimpleNamespace(spec=spec))


def test_models_of_different_outcomes_are_refused_in_one_line(models, cohort):
    with pytest.raises(ModelComparisonError, match=r"cannot compare a clinical model .*'original'.* generic-mode"):
        evaluate_models({"original": models.shipped, "registry": _generic("time", "status")}, cohort)
    table = pd.DataFrame({"age": [1.0, 2.0, 3.0], "time": [1, 2, 3], "status": [1, 0, 1], "days": [4, 5, 6],
                          "event": [0, 1, 1]})  # fmt: skip
    with pytest.raises(ModelComparisonError, match="'a' reads 'time'/'status'; 'b' reads 'days'/'event'"):
        evaluate_models({"a": _generic("time", "status"), "b": _generic("days", "event")}, table)
    with pytest.raises(ModelComparisonError, match="at least one model"):
        evaluate_models({}, cohort)


def test_comparison_report_is_self_contained_and_reads_in_clinical_words(report_path):
    path = report_path
    text = path.read_text()
    assert "<script" not in text.lower()
    for reference in re.findall(r"(?:src|href)='([^']*)'", text):
        assert reference.startswith(("data:image/png;base64,", "#")), reference
    ids = set(re.findall(r"id='([^']*)'", text))
    for anchor in re.findall(r"href='#([^']*)'", text):
        assert anchor in ids, anchor  # every in-page link (navigation, TRIPOD+AI table) has its target
    readable = html.unescape(text)
    headings = [
        re.search(f"{title}</h2>", readable) for title in ("What changed", "Original model", r"Updated model \(.*?\)")
    ]
    assert all(headings) and [m.start() for m in headings] == sorted(m.start() for m in headings)
    for phrase in ("Before and after updating", "is an update of", "original model", "paired 95% CI", "In short",
                   "Are the predicted risks right on average?", "Calibration compared", "Prior blinatumomab",
                   "Research tool, not for clinical decisions", "The same training patients as",
                   "Net benefit compared at chosen thresholds", "Would acting on the predicted risks lead to better",
                   "two-sided paired bootstrap p-value", "Not adjusted for multiplicity",
                   "unnecessary interventions avoided per 100"):  # fmt: skip
        assert phrase in readable, phrase
    assert "calibration_slope" not in readable and "harrell_c" not in readable  # code names stay out
    # 7 overlaid plots (with the two net-benefit differences) and each model's own 7
    assert text.count("data:image/png;base64,") == 7 + 2 * 7
    assert "<th>p</th>" in text
    assert path.stat().st_size < 5_000_000


@pytest.mark.browser
def test_comparison_report_renders_in_a_headless_browser(report_path):
    path = report_path
    with chromium(width=1280, height=1000) as driver:
        started = time.perf_counter()
        driver.get(path.as_uri())
        driver.execute_script("return document.readyState")
        elapsed = time.perf_counter() - started
        images = driver.find_elements("tag name", "img")
        assert len(images) == 21
        for image in images:
            complete, width = driver.execute_script("return [arguments[0].complete, arguments[0].naturalWidth]", image)
            assert complete and width > 0
            assert image.rect["width"] > 100 and image.rect["height"] > 100
        assert console_errors(driver) == []
        ARTIFACTS.mkdir(exist_ok=True)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 100, 16000))
        assert driver.save_screenshot(str(ARTIFACTS / "comparison_report.png"))
        (ARTIFACTS / "comparison_report_timing.txt").write_text(
            f"load {elapsed:.2f} s, size {path.stat().st_size / 1e6:.2f} MB\n"
        )
    assert elapsed < 5


def _without_timestamps(text: str) -> str:
    text = re.sub(r'"created": "[^"]*"', '"created": ""', text)
    return re.sub(r"created [^<]* by carrisk", "created by carrisk", text)


def test_one_model_on_the_command_line_writes_what_evaluate_model_writes(models, cohort, tmp_path):
    cohort.to_csv(tmp_path / "b.csv", index=False)
    out = tmp_path / "cli"
    result = run_cli("evaluate", tmp_path / "b.csv", "--model", models.bundle, "--out", out, "--n-bootstrap", "20",
                     "--n-bootstrap-calibration", "4", "--seed", "3")  # fmt: skip
    assert result.exit_code == 0, result.output
    records = carrisk.read_records(tmp_path / "b.csv")
    direct = evaluate_model(models.updated, records, source=str(tmp_path / "b.csv"), **ARGS)
    expected = tmp_path / "direct"
    paths = direct.write(expected)
    write_evaluation_report(direct, expected / "report.html", figures=paths)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in expected.iterdir())
    assert not (out / "comparison.json").exists()
    for path in expected.iterdir():
        if path.suffix in (".json", ".html"):
            assert _without_timestamps((out / path.name).read_text()) == _without_timestamps(path.read_text()), path
        else:
            assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    assert direct.to_text() in result.output


def test_two_bundles_on_the_command_line(models, cohort, tmp_path):
    cohort.to_csv(tmp_path / "b.csv", index=False)
    out = tmp_path / "compare"
    args = ["--n-bootstrap", "10", "--n-bootstrap-calibration", "3", "--seed", "3"]
    result = run_cli(
        "evaluate", tmp_path / "b.csv", "--model", "shipped", "--model", models.bundle, "--out", out, *args
    )
    assert result.exit_code == 0, result.output
    level = models.updated.level.replace("_", " ")
    assert f"updated model ({level}) is an update of original model" in result.output
    assert "Harrell's C: original model" in result.output and "difference" in result.output
    assert re.search(r"Harrell's C: .*difference [-+]\d\.\d{3} \(.*\), p = \d\.\d{3}", result.output)
    assert "Net benefit per 100 patients" in result.output
    assert re.search(r"at 12 months, threshold 30%: treat all .*difference [-+]\d+\.\d .*, p [=<] ", result.output)
    document = json.loads((out / "comparison.json").read_text())
    assert document["info"]["models"] == ["original model", f"updated model ({level})"]
    assert document["info"]["relations"][0]["updates"] == "original model"
    assert {row["measure"] for row in document["differences"]} == set(DIFFERENCE_MEASURES)
    assert all("p_value" in row for row in document["differences"])
    assert len(document["net_benefit_differences"]) == 2 * len(NET_BENEFIT_THRESHOLDS)
    for name in ("comparison.csv", "differences.csv", "report.html", "comparison_calibration_6mo.png",
                 "net_benefit_differences.csv", "net_benefit_difference_curves.csv",
                 "comparison_net_benefit_difference_6mo.png", "comparison_net_benefit_difference_12mo.png",
                 "comparison_calibration_12mo.png", "comparison_decision_curve_12mo.png",
                 "comparison_observed_vs_predicted.png"):  # fmt: skip
        assert (out / name).stat().st_size > 1000, name
    for directory in document["info"]["directories"].values():
        own = json.loads((out / directory / "evaluation.json").read_text())
        assert own["info"]["n"] == len(cohort)
    side = pd.read_csv(out / "comparison.csv")
    assert {"original model: estimate", f"updated model ({level}) - original model: difference",
            f"updated model ({level}) - original model: difference p-value"} <= set(side.columns)  # fmt: skip
    assert "p_value" in pd.read_csv(out / "differences.csv").columns
    benefit = pd.read_csv(out / "net_benefit_differences.csv")
    assert sorted(benefit["threshold"].unique()) == list(NET_BENEFIT_THRESHOLDS)
    assert not list(out.glob("**/*.tmp")) and not list(out.glob("**/.*"))  # atomic writes leave nothing behind


def test_bad_comparisons_on_the_command_line_fail_in_one_line(models, cohort, tmp_path):
    cohort.to_csv(tmp_path / "b.csv", index=False)
    base = ["evaluate", tmp_path / "b.csv", "--out", tmp_path / "x", "--n-bootstrap", "5"]
    result = run_cli(*base, "--model", "shipped", "--model", models.bundle, "--name", "only one")
    assert result.exit_code == 2 and "1 --name for 2 --model" in result.output
    result = run_cli(*base, "--name", "lonely")
    assert result.exit_code == 2 and "two or more --model" in result.output
    result = run_cli(*base, "--model", "shipped", "--model", models.bundle, "--name", "a", "--name", "a")
    assert result.exit_code == 2 and "distinct" in result.output
    result = run_cli(*base, "--model", "shipped", "--model", models.bundle, "--net-benefit-threshold", "1.5")
    assert result.exit_code == 2 and "strictly between 0 and 1" in result.output
    result = run_cli(*base, "--net-benefit-threshold", "0.3")
    assert result.exit_code == 2 and "two or more --model" in result.output
    table = carrisk.load_public_dataset("gbsg2").iloc[:150]
    table.to_csv(tmp_path / "g.csv", index=False)
    trained = run_cli("train", tmp_path / "g.csv", "--time-col", "time", "--event-col", "event", "--model", "coxph",
                      "--out", tmp_path / "generic")  # fmt: skip
    assert trained.exit_code == 0, trained.output
    result = run_cli(*base, "--model", "shipped", "--model", tmp_path / "generic")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("carrisk: error:")]
    assert len(lines) == 1 and "cannot compare a clinical model" in lines[0] and "'time'/'event'" in lines[0]
    assert not (tmp_path / "x").exists()


# ----- p-values and net-benefit differences -----


def test_the_paired_p_value_on_constructed_draws():
    # 19 positive draws: (1 + 0) / 20 on the lower side, doubled
    assert paired_bootstrap_p_value(np.arange(1.0, 20.0)) == pytest.approx(0.1, abs=1e-15)
    assert paired_bootstrap_p_value(-np.arange(1.0, 20.0)) == pytest.approx(0.1, abs=1e-15)  # two-sided: symmetric
    # one draw below 0 of 19: 2 * (1 + 1) / 20; NaN draws (undefined resamples) are left out
    draws = np.r_[-0.5, np.arange(1.0, 19.0), np.nan, np.nan]
    assert paired_bootstrap_p_value(draws) == pytest.approx(0.2, abs=1e-15)
    # a draw of exactly 0 counts on both sides: 2 * (1 + 1) / 20
    assert paired_bootstrap_p_value(np.r_[0.0, np.arange(1.0, 19.0)]) == pytest.approx(0.2, abs=1e-15)
    # balanced draws and all-zero draws give 1 (capped); nothing finite gives NaN
    assert paired_bootstrap_p_value([-2.0, -1.0, 1.0, 2.0]) == 1.0
    assert paired_bootstrap_p_value(np.zeros(50)) == 1.0
    assert np.isnan(paired_bootstrap_p_value([np.nan, np.nan]))
    # 200 resamples: the smallest possible p is 2 / 201; 7 of 200 below 0 gives 2 * 8 / 201
    assert paired_bootstrap_p_value(np.linspace(0.1, 1.0, 200)) == pytest.approx(2 / 201, abs=1e-15)
    assert paired_bootstrap_p_value(np.r_[-np.ones(7), np.ones(193)]) == pytest.approx(16 / 201, abs=1e-15)


def test_p_values_come_from_the_paired_draws(comparison):
    resampled = comparison.resampled
    reference, other = comparison.names
    for row in comparison.differences.to_dict("records"):
        mine, theirs = (
            resampled[(resampled["model"] == name) & (resampled["measure"] == row["measure"])
                      & (resampled["horizon"] == row["horizon"])]["value"].to_numpy()
            for name in (other, reference)
        )  # fmt: skip
        d = mine - theirs
        d = d[np.isfinite(d)]
        expected = min(1.0, 2 * min(1 + (d <= 0).sum(), 1 + (d >= 0).sum()) / (d.size + 1))
        assert row["p_value"] == pytest.approx(expected, abs=1e-15), row
        assert comparison.p_value(row["measure"], row["horizon"]) == row["p_value"]


def test_net_benefit_differences_are_those_of_net_benefit_on_the_same_resamples(models, cohort, comparison):
    table = comparison.net_benefit_differences
    reference, other = comparison.names
    assert len(table) == 2 * len(NET_BENEFIT_THRESHOLDS)
    assert comparison.info["net_benefit_thresholds"] == list(NET_BENEFIT_THRESHOLDS)
    event = cohort["efs_event"].to_numpy(dtype=bool)
    days = cohort["efs_days"].to_numpy(dtype=float)
    rng = np.random.default_rng(ARGS["seed"])
    indices = [rng.integers(0, event.size, event.size) for _ in range(ARGS["n_bootstrap"])]
    for horizon, horizon_days in (("6mo", SIX_MONTHS_DAYS), ("12mo", TWELVE_MONTHS_DAYS)):
        risk = {
            name: 1.0 - comparison.results[name].predictions[f"efs_{horizon}"].to_numpy() for name in (reference, other)
        }
        direct = {name: net_benefit(event, days, risk[name], horizon_days, NET_BENEFIT_THRESHOLDS) for name in risk}
        treat_all = net_benefit(event, days, np.ones(event.size), horizon_days, NET_BENEFIT_THRESHOLDS)
        paired = np.array(
            [
                net_benefit(event[i], days[i], risk[other][i], horizon_days, NET_BENEFIT_THRESHOLDS)
                - net_benefit(event[i], days[i], risk[reference][i], horizon_days, NET_BENEFIT_THRESHOLDS)
                for i in indices
            ]
        )
        rows = table[table["horizon"] == horizon].sort_values("threshold")
        np.testing.assert_allclose(rows["estimate"], direct[other] - direct[reference], atol=1e-15, rtol=0)
        np.testing.assert_allclose(rows["net_benefit_model"], direct[other], atol=1e-15, rtol=0)
        np.testing.assert_allclose(rows["net_benefit_reference"], direct[reference], atol=1e-15, rtol=0)
        np.testing.assert_allclose(rows["net_benefit_all"], treat_all, atol=1e-15, rtol=0)
        np.testing.assert_allclose(rows["lower"], np.quantile(paired, 0.025, axis=0), atol=1e-15, rtol=0)
        np.testing.assert_allclose(rows["upper"], np.quantile(paired, 0.975, axis=0), atol=1e-15, rtol=0)
        expected_p = [paired_bootstrap_p_value(paired[:, j]) for j in range(len(NET_BENEFIT_THRESHOLDS))]
        np.testing.assert_allclose(rows["p_value"], expected_p, atol=1e-15, rtol=0)
        odds = np.asarray(NET_BENEFIT_THRESHOLDS) / (1 - np.asarray(NET_BENEFIT_THRESHOLDS))
        np.testing.assert_allclose(rows["per_100_patients"], 100 * rows["estimate"], atol=1e-12, rtol=0)
        np.testing.assert_allclose(rows["interventions_avoided_per_100"], 100 * rows["estimate"] / odds, atol=1e-12)
        # the difference at a threshold is also the difference of the two models' own decision curves, and the
        # curve's band at the table's thresholds comes from the same resamples (the decision curves' own draws)
        curves = comparison.net_benefit_difference_curves
        curve = curves[curves["horizon"] == horizon].set_index("threshold")
        own = {}
        for name in (reference, other):
            decision = comparison.results[name].decision_curves
            own[name] = decision[decision["horizon"] == horizon].set_index("threshold")
        for j, threshold in enumerate(NET_BENEFIT_THRESHOLDS):
            at = curve.loc[threshold]
            assert at["estimate"] == pytest.approx(rows["estimate"].iloc[j], abs=1e-15)
            assert (at["lower"], at["upper"]) == pytest.approx(
                (rows["lower"].iloc[j], rows["upper"].iloc[j]), abs=1e-15
            )
            mine = own[other].loc[threshold, "net_benefit_model"] - own[reference].loc[threshold, "net_benefit_model"]
            assert mine == pytest.approx(rows["estimate"].iloc[j], abs=1e-15)
        difference, low, high, p = comparison.net_benefit_difference(0.3, horizon)
        assert (difference, low, high, p) == pytest.approx(
            tuple(rows.iloc[1][["estimate", "lower", "upper", "p_value"]])
        )


class _TruthModel:
    """The simulator's true EFS of each patient: the best possible model."""

    def __init__(self, cohort):
        self.cohort = cohort
        self.rows = {str(pid): k for k, pid in enumerate(cohort.records["patient_id"])}

    def predict_survival(self, records, times):
        return true_survival(self.cohort, times)[[self.rows[str(pid)] for pid in records["patient_id"]]]


class _UninformativeModel(_TruthModel):
    """Everybody the cohort's mean true EFS, jittered at random (a constant cannot be given a calibration curve)."""

    def predict_survival(self, records, times):
        mean = true_survival(self.cohort, times).mean(axis=0)
        jitter = np.random.default_rng(0).normal(0.0, 0.05, len(records))[:, None]
        return mean[None, :] ** np.exp(jitter)


def test_the_truth_has_a_clearly_higher_net_benefit_than_an_uninformative_model():
    simulated = simulate_cohort(400, seed=21)
    compared = evaluate_models(
        {"uninformative": _UninformativeModel(simulated), "truth": _TruthModel(simulated)},
        simulated.records,
        n_bootstrap=100,
        n_bootstrap_calibration=2,
        seed=1,
    )
    table = compared.net_benefit_differences.set_index(["horizon", "threshold"])
    for key in (("6mo", 0.4), ("12mo", 0.5), ("12mo", 0.6)):
        row = table.loc[key]
        assert row["estimate"] > 0.02 and row["lower"] > 0 and row["p_value"] < 0.05, (key, row)
        assert row["verdict"] == "better"
    # and it ranks patients clearly better
    assert compared.p_value("harrell_c") < 0.05 and compared.difference("harrell_c") > 0.1


def test_net_benefit_thresholds_are_checked(models, cohort):
    for bad in ([0.0, 0.3], [1.0], []):
        with pytest.raises(ModelComparisonError, match="strictly between 0 and 1"):
            evaluate_models({"a": models.shipped, "b": models.shipped}, cohort, net_benefit_thresholds=bad)


#: The keys of comparison.json and of its difference rows before p-values and net-benefit differences were added.
_JSON_KEYS_BEFORE = {"info", "summary", "differences", "models"}
_DIFFERENCE_KEYS_BEFORE = {
    "model", "reference", "measure", "label", "horizon", "horizon_days", "estimate", "lower", "upper", "n_resamples",
    "interval", "better_when", "improvement", "improvement_lower", "improvement_upper", "verdict",
}  # fmt: skip
_INFO_KEYS_BEFORE = {
    "cohort", "n", "events", "events_by_horizon", "generic", "outcome_columns", "models", "reference", "relations",
    "directories", "horizons_days", "n_bootstrap", "n_bootstrap_calibration", "seed", "paired", "created",
}  # fmt: skip


def test_the_json_contract_only_gains_keys(comparison):
    document = json.loads(comparison.to_json())
    assert set(document) == _JSON_KEYS_BEFORE | {"net_benefit_differences", "net_benefit_difference_curves"}
    assert set(document["info"]) == _INFO_KEYS_BEFORE | {"p_values", "net_benefit_thresholds"}
    for row in document["differences"]:
        assert set(row) == _DIFFERENCE_KEYS_BEFORE | {"p_value"}
        assert row["p_value"] is None or 0 < row["p_value"] <= 1
    assert {row["measure"] for row in document["differences"]} == set(DIFFERENCE_MEASURES)
    first = document["net_benefit_differences"][0]
    assert {"threshold", "estimate", "lower", "upper", "p_value", "verdict", "per_100_patients",
            "interventions_avoided_per_100"} <= set(first)  # fmt: skip
    assert len(document["net_benefit_difference_curves"]) == 2 * len(DEFAULT_THRESHOLDS)
