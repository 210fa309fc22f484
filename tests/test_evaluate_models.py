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
from carrisk.evaluate import (
    DIFFERENCE_MEASURES,
    ModelComparisonError,
    _slope_by_newton,
    calibration_slope,
    comparison_names,
    evaluate_model,
    evaluate_models,
)
from carrisk.metrics import harrell_c
from carrisk.nonparametric import kaplan_meier_survival_at
from carrisk.report import write_comparison_report, write_evaluation_report
from carrisk.simulate import EXTERNAL_CENTRES, TWELVE_MONTHS_DAYS, simulate_cohort
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
    assert (table["n_resamples"] > 0).all()
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
                   "Research tool, not for clinical decisions", "The same training patients as"):  # fmt: skip
        assert phrase in readable, phrase
    assert "calibration_slope" not in readable and "harrell_c" not in readable  # code names stay out
    # 5 overlaid plots and each model's own 7
    assert text.count("data:image/png;base64,") == 5 + 2 * 7
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
        assert len(images) == 19
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
    document = json.loads((out / "comparison.json").read_text())
    assert document["info"]["models"] == ["original model", f"updated model ({level})"]
    assert document["info"]["relations"][0]["updates"] == "original model"
    assert {row["measure"] for row in document["differences"]} == set(DIFFERENCE_MEASURES)
    for name in ("comparison.csv", "differences.csv", "report.html", "comparison_calibration_6mo.png",
                 "comparison_calibration_12mo.png", "comparison_decision_curve_12mo.png",
                 "comparison_observed_vs_predicted.png"):  # fmt: skip
        assert (out / name).stat().st_size > 1000, name
    for directory in document["info"]["directories"].values():
        own = json.loads((out / directory / "evaluation.json").read_text())
        assert own["info"]["n"] == len(cohort)
    side = pd.read_csv(out / "comparison.csv")
    assert {"original model: estimate", f"updated model ({level}) - original model: difference"} <= set(side.columns)
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
