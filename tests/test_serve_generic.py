"""``carrisk serve`` over a generic-mode bundle: the API reads the model's own columns; the page says it cannot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carrisk import load_public_dataset
from carrisk.bundle import save_model
from carrisk.features import FeatureSpec
from carrisk.predict import fit_efs_model
from carrisk.schema import survival_target
from carrisk.serve import ServeSettings, app_from_bundle

FEATURES = ["age", "estrec", "pnodes", "progrec", "tsize", "horTh", "menostat", "tgrade"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = load_public_dataset("gbsg2")
    spec = FeatureSpec.generic(table, "time", "event")
    model = fit_efs_model(table, survival_target(table, "time", "event"), "coxnet_cv", spec=spec, n_bootstrap=5)
    path = tmp_path_factory.mktemp("generic") / "gbsg2"
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def client(bundle: Path) -> TestClient:
    return TestClient(app_from_bundle(bundle, ServeSettings(rate_limit_per_s=0)))


def _records(n: int) -> list[dict[str, Any]]:
    table = load_public_dataset("gbsg2")[FEATURES].head(n)
    return table.astype(object).to_dict("records")


def test_model_says_generic_and_lists_its_columns(client: TestClient) -> None:
    info = client.get("/model").json()
    assert info["mode"] == "generic" and info["features"] == FEATURES
    assert client.get("/health").status_code == 200
    assert client.get("/").status_code == 200  # the page loads and explains itself (see app.js)
    assert 'info.mode === "generic"' in client.get("/app.js").text
    schema = client.get("/openapi.json").json()["components"]["schemas"]["GenericRecord"]
    assert schema["required"] == FEATURES and "patient_id" in schema["properties"]


def test_predict_equals_the_model_on_the_same_records(client: TestClient, bundle: Path) -> None:
    from carrisk.bundle import load_model

    records = _records(4)
    records[0]["patient_id"] = "P-1"
    records[2]["tsize"] = None  # missing: imputed, as carrisk predict does
    response = client.post("/predict", json=records)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["patient_id"] for p in body] == ["P-1", "1", "2", "3"]  # no identifier: the record's position
    frame = pd.DataFrame(records).assign(patient_id=["P-1", "1", "2", "3"])
    expected = json.loads(json.dumps(load_model(bundle).predict_efs(frame).to_dict("records")))
    assert body == expected
    assert all(len(p["top_reasons"]) == 3 and p["top_reasons"][0]["variable"] in FEATURES for p in body)


def test_explain_is_additive_over_the_models_columns(client: TestClient) -> None:
    response = client.post("/explain?horizon_days=730", json=_records(3))
    assert response.status_code == 200, response.text
    for item in response.json():
        assert set(item["contributions"]) <= set(FEATURES)
        assert item["base_value"] + sum(item["contributions"].values()) == pytest.approx(item["prediction"], abs=1e-9)


def test_every_problem_is_listed_by_record_and_column(client: TestClient) -> None:
    records = _records(2)
    records[0].update(estrec="lots", horTh="maybe", tsize_mm=20)
    del records[1]["tgrade"]
    response = client.post("/predict", json=records)
    assert response.status_code == 422
    found = {(p["record"], p["field"]): p for p in response.json()["problems"]}
    assert set(found) == {(0, "estrec"), (0, "horTh"), (0, "tsize_mm"), (1, "tgrade")}
    assert "training levels" in found[(0, "horTh")]["expected"]
    assert "GET /model" in found[(0, "tsize_mm")]["expected"]


_CELLS = st.none() | st.booleans() | st.integers(-5, 100) | st.floats() | st.text(max_size=6) | st.lists(st.none())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.sampled_from([*FEATURES, "patient_id", "extra"]), _CELLS), max_size=4))
def test_fuzzed_records_are_predicted_or_refused_never_a_server_error(client: TestClient, changes: list) -> None:
    record = _records(1)[0]
    for column, value in changes:
        record[column] = value
    content = json.dumps([record]).encode()
    response = client.post("/predict", content=content, headers={"content-type": "application/json"})
    assert response.status_code in (200, 422), response.text


def test_a_model_followed_for_less_than_a_year_predicts_and_says_what_it_carried_forward(tmp_path: Path) -> None:
    table = load_public_dataset("gbsg2").head(300)
    table = table.assign(time=table["time"].clip(upper=300.0) * 0.9)  # follow-up ends before 12 months
    table.loc[table["time"] >= 270.0, "event"] = 0
    spec = FeatureSpec.generic(table, "time", "event")
    with pytest.warns(UserWarning, match="carried forward"):
        model = fit_efs_model(table, survival_target(table, "time", "event"), "coxph", spec=spec, n_bootstrap=5)
    last = float(model.time_grid[-1])
    assert last < 365.25
    predictions = model.predict_efs(table[FEATURES].head(3))
    np.testing.assert_allclose(predictions["efs_12mo"], model.predict_survival(table[FEATURES].head(3), [last])[:, 0])
    assert all(f"curve ends at day {last:g}): carried forward" in a for a in predictions["assumptions"])
    save_model(model, tmp_path / "short")
    client = TestClient(app_from_bundle(tmp_path / "short", ServeSettings(rate_limit_per_s=0)))
    records = table[FEATURES].head(2).astype(object).to_dict("records")
    assert client.post("/predict?band=true", json=records).status_code == 200
    assert client.post("/explain?horizon_days=365.25", json=records).status_code == 422  # asked for: refused
    assert client.post(f"/explain?horizon_days={last:g}", json=records).status_code == 200
    from carrisk import evaluate_model

    with pytest.warns(UserWarning, match=f"horizon 12mo .* is past the model's follow-up .* day {last:g}"):
        evaluate_model(model, load_public_dataset("gbsg2"), n_bootstrap=2, n_bootstrap_calibration=1)
