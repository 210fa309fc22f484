"""The calculator page in a real headless browser against ``carrisk serve`` running on 127.0.0.1.

Fills the form for two patients, reads the displayed 6-month EFS and checks it equals ``EFSModel.predict_efs`` for
the same record to the displayed precision, with no console errors and no horizontal scrolling on a 390 px phone.
Screenshots are saved to ``artefacts/browser/`` (git-ignored). The server's log is checked for patient data.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _browser import chromium, console_errors

from carrisk.bundle import load_model

pytest.importorskip("fastapi")
pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "artefacts" / "browser"
PHONE_WIDTH_PX = 390
STARTUP_TIMEOUT_S = 180

REFERENCE = {
    "age_years": "12",
    "sex": "M",
    "car_product": "tisagenlecleucel",
    "prior_relapses": "1",
    "blina_exposed": "no",
    "marrow_kind": "percent",
    "marrow_blasts_pct": "0.05",
    "cns_status": "CNS1",
    "extramedullary_disease": "no",
    "cd19_expression": "bright",
    "kmt2a_status": "not rearranged",
    "prior_hsct_count": "0",
    "down_syndrome": "no",
    "prior_inotuzumab": "no",
}
NONRESPONDER = {
    "age_years": "11",
    "sex": "F",
    "car_product": "tisagenlecleucel",
    "prior_relapses": "2",
    "blina_exposed": "yes",
    "blina_response": "no response",
    "marrow_kind": "percent",
    "marrow_blasts_pct": "35",
    "cns_status": "CNS1",
    "extramedullary_disease": "no",
    "cd19_expression": "dim",
    "kmt2a_status": "rearranged",
    "prior_hsct_count": "1",
    "months_since_last_hsct": "14",
    "down_syndrome": "no",
    "prior_inotuzumab": "yes",
}
NUMBERS = ("age_years", "prior_relapses", "prior_hsct_count", "months_since_last_hsct")


def _record(form: dict[str, str]) -> dict[str, Any]:
    """The record the page sends for this form (blank = missing)."""
    record: dict[str, Any] = {"patient_id": "calculator", "cytogenetics": None, "blina_response": None}
    record["months_since_last_hsct"] = None
    for name, value in form.items():
        if name != "marrow_kind":
            record[name] = float(value) if name in NUMBERS else value
    return record


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _serving(log: Path, *options: str) -> Iterator[str]:
    """``carrisk serve`` on a free loopback port (its output in ``log``) until the block ends; yields its URL."""
    port = _free_port()
    command = [sys.executable, "-c", "from carrisk.cli import app; app()", "serve", "--port", str(port), *options]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(url + "health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"carrisk serve did not start:\n{log.read_text()}")
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with _serving(log) as url:
        yield url, log


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model(ROOT / "models" / "default")


def _fill_and_read(driver: Any, url: str, form: dict[str, str]) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: "SYNTHETIC" in d.find_element(By.ID, "warning").text)
    for name, value in form.items():
        element = driver.find_element(By.ID, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    driver.find_element(By.ID, "calculate").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "efs6").text)
    assert driver.find_element(By.ID, "warning").is_displayed()
    assert driver.find_elements(By.CSS_SELECTOR, "#curve svg path.band")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#waterfall .wf-row")) >= 3
    return str(driver.find_element(By.ID, "efs6").text)


@pytest.mark.parametrize(("name", "form"), [("reference", REFERENCE), ("blina_nonresponder", NONRESPONDER)])
def test_page_shows_the_same_6_month_efs_as_predict(
    server: tuple[str, Path], model: Any, name: str, form: dict
) -> None:
    url, _ = server
    expected = model.predict_efs(pd.DataFrame([_record(form)]))["efs_6mo"].iloc[0]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with chromium(width=1280, height=1000) as driver:
        shown = _fill_and_read(driver, url, form)
        assert shown == f"{100 * expected:.1f}%"
        assert console_errors(driver) == []
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(ARTEFACTS / f"{name}_desktop.png"))
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE_WIDTH_PX, "height": 844, "deviceScaleFactor": 1, "mobile": True},
        )
        shown = _fill_and_read(driver, url, form)
        assert shown == f"{100 * expected:.1f}%"
        assert driver.execute_script("return document.documentElement.scrollWidth") <= PHONE_WIDTH_PX
        assert console_errors(driver) == []
        driver.execute_script("document.getElementById('result').scrollIntoView()")
        driver.save_screenshot(str(ARTEFACTS / f"{name}_phone.png"))


def test_an_empty_form_or_a_bad_entry_is_named_in_the_forms_words(server: tuple[str, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    with chromium(width=1280, height=1000) as driver:
        driver.get(url)
        WebDriverWait(driver, 30).until(lambda d: "SYNTHETIC" in d.find_element(By.ID, "warning").text)
        about = driver.find_element(By.ID, "provenance").get_attribute("innerText")
        assert "coxnet_cv alpha" in about and "{" not in about  # tuned settings in words, not raw JSON
        driver.find_element(By.ID, "calculate").click()  # nothing entered: no prediction of a "median patient"
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "error").is_displayed())
        assert "Every field is empty" in driver.find_element(By.ID, "error").text
        assert not driver.find_element(By.ID, "output").is_displayed()
        driver.find_element(By.ID, "age_years").send_keys("55")  # outside the model's age range
        driver.find_element(By.ID, "calculate").click()
        WebDriverWait(driver, 30).until(lambda d: "Age at infusion" in d.find_element(By.ID, "error").text)
        assert "age_years" not in driver.find_element(By.ID, "error").text
        driver.save_screenshot(str(ARTEFACTS / "form_problems.png"))
        # the browser logs the refused requests themselves (status 422), and nothing else
        assert all("status of 422" in error for error in console_errors(driver))


def test_server_log_has_requests_but_no_patient_data(server: tuple[str, Path]) -> None:
    url, log = server
    record = dict(_record(REFERENCE), patient_id="LOGCHECK-4711", cytogenetics="t(9;22) LOGCHECK")
    request = urllib.request.Request(
        url + "predict",
        data=json.dumps([record]).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        assert "set-cookie" not in {k.lower() for k in response.headers}
    time.sleep(0.5)
    text = log.read_text()
    assert '"POST /predict HTTP/1.1" 200' in text  # the access log is on, and it is what we read
    assert "LOGCHECK" not in text


def test_page_over_a_generic_model_says_the_calculator_needs_a_clinical_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from carrisk import load_public_dataset
    from carrisk.bundle import save_model
    from carrisk.features import FeatureSpec
    from carrisk.predict import fit_efs_model
    from carrisk.schema import survival_target

    table = load_public_dataset("gbsg2")
    spec = FeatureSpec.generic(table, "time", "event")
    generic = fit_efs_model(table, survival_target(table, "time", "event"), "coxnet_cv", spec=spec, n_bootstrap=5)
    folder = tmp_path_factory.mktemp("generic")
    save_model(generic, folder / "gbsg2")
    with _serving(folder / "server.log", "--model", str(folder / "gbsg2")) as url, chromium() as driver:
        driver.get(url)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "generic-note").is_displayed())
        note = driver.find_element(By.ID, "generic-note").text
        assert "clinical carrisk model" in note and "tgrade" in note and "POST /predict" in note
        assert not driver.find_element(By.ID, "patient").is_displayed()
        assert driver.find_element(By.ID, "warning").is_displayed()
        assert console_errors(driver) == []
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTEFACTS / "generic_model.png"))
