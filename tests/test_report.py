"""The HTML evaluation report: self-contained, readable, and rendered by a real headless browser."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

import carrisk
from carrisk.evaluate import evaluate_model
from carrisk.report import TRIPOD_AI_ITEMS, write_evaluation_report
from carrisk.simulate import EXTERNAL_CENTRES, simulate_cohort
from tests._browser import chromium, console_errors

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = carrisk.load_model(DEFAULT_MODEL)
    cohort = simulate_cohort(250, seed=5, **EXTERNAL_CENTRES["shifted"])
    result = evaluate_model(model, cohort.records, n_bootstrap=20, n_bootstrap_calibration=10, source="centre.csv")
    out = tmp_path_factory.mktemp("report")
    paths = result.write(out)
    return write_evaluation_report(result, out / "report.html", figures=paths)


def test_report_is_self_contained_and_uses_clinical_names(report_path):
    text = report_path.read_text()
    assert "<script" not in text.lower()
    # no network: every src/href is an embedded image or an in-page anchor
    for reference in re.findall(r"(?:src|href)='([^']*)'", text):
        assert reference.startswith(("data:image/png;base64,", "#")), reference
    assert text.count("data:image/png;base64,") >= 6
    readable = html.unescape(text)
    for phrase in ("Harrell's C", "calibration-in-the-large", "Prior blinatumomab: nonresponder", "Disease burden",
                   "Research tool, not for clinical decisions", "synthetic", "TRIPOD+AI"):  # fmt: skip
        assert phrase in readable, phrase
    assert "blina_status_nonresponder" not in text  # code names stay out of the report
    assert text.count("<tr><td>") >= len(TRIPOD_AI_ITEMS)
    assert report_path.stat().st_size < 5_000_000


@pytest.mark.browser
def test_report_renders_in_a_headless_browser_with_every_plot_visible(report_path):
    with chromium(width=1280, height=1000) as driver:
        started = time.perf_counter()
        driver.get(report_path.as_uri())
        driver.execute_script("return document.readyState")
        elapsed = time.perf_counter() - started
        images = driver.find_elements("tag name", "img")
        assert len(images) >= 6
        for image in images:
            natural = driver.execute_script("return [arguments[0].complete, arguments[0].naturalWidth]", image)
            assert natural[0] and natural[1] > 0
            box = image.rect
            assert box["width"] > 100 and box["height"] > 100
        assert console_errors(driver) == []
        ARTIFACTS.mkdir(exist_ok=True)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 100, 16000))
        assert driver.save_screenshot(str(ARTIFACTS / "evaluation_report.png"))
        (ARTIFACTS / "evaluation_report_timing.txt").write_text(
            f"load {elapsed:.2f} s, size {report_path.stat().st_size / 1e6:.2f} MB\n"
        )
