"""The HTTP API through FastAPI's test client: the predict contract, errors, limits, access control, fuzzing."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carrisk.bundle import load_model, read_manifest
from carrisk.schema import OUTCOME_COLUMNS, PREINFUSION_COLUMNS, read_records, validate_records
from carrisk.serve import ServeSettings, app_from_bundle, create_app, is_loopback, read_token

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "models" / "default"
EXAMPLES = ROOT / "carrisk" / "data" / "example_patients.csv"
STATIC = resources.files("carrisk.serve") / "static"


def _records(n: int | None = None) -> list[dict[str, Any]]:
    frame = read_records(EXAMPLES).drop(columns=list(OUTCOME_COLUMNS))
    frame = frame.astype(object).where(frame.notna(), None)
    rows = frame.to_dict("records")
    return rows if n is None else rows[:n]


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model(MODEL_DIR)


@pytest.fixture(scope="module")
def client(model: Any) -> TestClient:
    app = create_app(
        model, manifest=read_manifest(MODEL_DIR), settings=ServeSettings(rate_limit_per_s=0), warm_up=False
    )
    return TestClient(app)


def test_predict_returns_the_predict_json_contract_of_the_same_model(client: TestClient, model: Any) -> None:
    records = _records()
    response = client.post("/predict", json=records)
    assert response.status_code == 200
    expected = json.loads(json.dumps(model.predict_efs(pd.DataFrame(records)).to_dict("records")))
    assert response.json() == expected


def test_band_keeps_the_contract_and_brackets_the_curve(client: TestClient, model: Any) -> None:
    records = _records(3)
    plain = client.post("/predict", json=records).json()
    banded = client.post("/predict?band=true", json=records).json()
    for without, with_band in zip(plain, banded):
        band = with_band.pop("band")
        assert with_band == without
        days, efs = np.array(without["curve"]["days"]), np.array(without["curve"]["efs"])
        at_band = efs[np.searchsorted(days, band["days"], side="right") - 1]
        assert np.all(np.array(band["lo"]) <= at_band + 1e-12)
        assert np.all(at_band <= np.array(band["hi"]) + 1e-12)
        assert np.all(np.array(band["hi"]) - np.array(band["lo"]) > 0)


def test_explain_is_exact_and_matches_the_model(client: TestClient, model: Any) -> None:
    records = _records(4)
    response = client.post("/explain?horizon_days=365.25", json=records)
    assert response.status_code == 200
    reference = model.explain(pd.DataFrame(records), horizon=365.25)
    for i, item in enumerate(response.json()):
        assert item["patient_id"] == records[i]["patient_id"]
        assert item["base_value"] + sum(item["contributions"].values()) == pytest.approx(item["prediction"], abs=1e-9)
        assert item["contributions"] == dict(zip(reference.feature_names, map(float, reference.values[i])))
    twelve = client.post("/predict", json=records).json()
    assert [e["prediction"] for e in response.json()] == pytest.approx([p["efs_12mo"] for p in twelve], abs=1e-9)


def test_a_horizon_beyond_the_models_follow_up_is_refused(client: TestClient, model: Any) -> None:
    last = float(model.time_grid[-1])
    response = client.post(f"/explain?horizon_days={last + 1:g}", json=_records(1))
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["field"] == "horizon_days" and f"ends at day {last:g}" in problem["expected"]
    assert client.post(f"/explain?horizon_days={last:g}", json=_records(1)).status_code == 200


def test_every_problem_is_listed_by_record_index_and_field(client: TestClient) -> None:
    good = _records(3)
    body = [
        dict(good[0], age_years=99, sex="X"),
        dict(good[1], marrow_blast=3),
        {"patient_id": "Z-1", "age_years": {"years": 4}},
        good[2],
    ]
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    problems = response.json()["problems"]
    found = {(p["record"], p["field"]) for p in problems}
    assert {(0, "age_years"), (0, "sex"), (1, "marrow_blast"), (2, "age_years"), (2, "sex")} <= found
    assert not any(p["record"] == 3 for p in problems)
    by_key = {(p["record"], p["field"]): p for p in problems}
    assert by_key[(0, "age_years")]["value"] == 99 and "between 0 and 40" in by_key[(0, "age_years")]["expected"]
    missing_sex = by_key[(2, "sex")]
    assert missing_sex["patient_id"] == "Z-1" and "null when the value is missing" in missing_sex["expected"]
    assert "object" in by_key[(2, "age_years")]["expected"]
    assert "no such column" in by_key[(1, "marrow_blast")]["expected"]


def test_cross_column_and_duplicate_problems_come_from_the_record_schema(client: TestClient) -> None:
    first, second = _records(2)
    body = [dict(first, blina_exposed="no", blina_response="CR"), dict(second, patient_id=first["patient_id"])]
    problems = client.post("/predict", json=body).json()["problems"]
    assert {(p["record"], p["field"]) for p in problems} >= {(0, "blina_response"), (1, "patient_id")}


@pytest.mark.parametrize(
    ("content", "headers", "expected"),
    [
        (b"{not json", {"content-type": "application/json"}, "valid JSON"),
        (b'"models/default"', {"content-type": "application/json"}, "JSON list of patient records"),
        (b"[]", {"content-type": "application/json"}, "at least 1"),
        (b"[1, 2]", {"content-type": "application/json"}, "a record"),
        (b"patient_id,age_years", {"content-type": "text/csv"}, "JSON list of patient records"),
    ],
)
def test_malformed_bodies_are_422_with_a_reason(
    client: TestClient, content: bytes, headers: dict[str, str], expected: str
) -> None:
    response = client.post("/predict", content=content, headers=headers)
    assert response.status_code == 422
    assert any(expected in p["expected"] for p in response.json()["problems"])


def test_limits_refuse_large_requests(model: Any) -> None:
    small = ServeSettings(max_patients=2, max_body_bytes=3000, rate_limit_per_s=0)
    limited = TestClient(create_app(model, settings=small, warm_up=False))
    too_many = limited.post("/predict", json=_records(3))
    assert too_many.status_code == 422 and "at most 2" in json.dumps(too_many.json())
    too_large = limited.post("/predict", json=[dict(_records(1)[0], cytogenetics="x" * 4000)])
    assert too_large.status_code == 413 and "3000 bytes" in too_large.json()["detail"]
    chunked = limited.post("/predict", content=iter([b"[" + b" " * 2000, b" " * 2000 + b"]"]))
    assert chunked.status_code == 413


def test_rate_limit_answers_429_with_retry_after(model: Any) -> None:
    limited = TestClient(create_app(model, settings=ServeSettings(rate_limit_per_s=3), warm_up=False))
    statuses = [limited.get("/model").status_code for _ in range(6)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    refused = limited.get("/model")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert all(limited.get("/health").status_code == 200 for _ in range(5))  # liveness is never limited


def test_bearer_token_is_required_when_configured(model: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "token.txt"
    token_file.write_text("s3cret-token-0123456789\n")
    guarded = TestClient(create_app(model, settings=ServeSettings(token=read_token(token_file)), warm_up=False))
    assert guarded.get("/health").json()["token_required"] is True
    assert guarded.post("/predict", json=_records(1)).status_code == 401
    wrong = guarded.post("/predict", json=_records(1), headers={"Authorization": "Bearer s3cret-token-0123456788"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    right = {"Authorization": "Bearer s3cret-token-0123456789"}
    assert guarded.post("/predict", json=_records(1), headers=right).status_code == 200
    assert guarded.get("/model").status_code == 401
    assert guarded.get("/", headers={}).status_code == 200  # the page itself asks for the token


def test_short_or_unreadable_tokens_are_refused(tmp_path: Path) -> None:
    (tmp_path / "short.txt").write_text("abc")
    with pytest.raises(ValueError, match="at least 16 characters"):
        read_token(tmp_path / "short.txt")
    with pytest.raises(ValueError, match="cannot read the token file"):
        read_token(tmp_path / "absent.txt")


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")


def test_no_cookies_no_caching_and_a_strict_content_security_policy(client: TestClient) -> None:
    for response in (client.get("/"), client.post("/predict", json=_records(1)), client.get("/model")):
        assert "set-cookie" not in response.headers
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self'" in response.headers["content-security-policy"]


def test_no_route_takes_a_path_or_loads_a_bundle(client: TestClient) -> None:
    routes = {(method, route.path) for route in client.app.routes for method in getattr(route, "methods", ())}
    api = {r for r in routes if r[1] != "/openapi.json" and r[0] != "HEAD"}
    assert api == {
        ("POST", "/predict"),
        ("POST", "/explain"),
        ("GET", "/model"),
        ("GET", "/health"),
        ("GET", "/"),
        ("GET", "/app.js"),
        ("GET", "/style.css"),
    }
    assert not any("{" in path for _, path in routes)
    assert client.get("/static/../../models/default/manifest.json").status_code == 404
    assert client.get("/docs").status_code == 404  # Swagger UI would load a CDN


def test_model_describes_the_bundle_and_says_synthetic(model: Any) -> None:
    app = app_from_bundle(MODEL_DIR, ServeSettings(rate_limit_per_s=0), warm_up=False)
    info = TestClient(app).get("/model").json()
    assert info["synthetic_training_data"] is True
    assert "SYNTHETIC" in info["warning"] and "not for clinical decisions" in info["warning"]
    assert "Trained on SYNTHETIC data" in info["model_card"]
    assert info["provenance"]["payload_sha256"] == read_manifest(MODEL_DIR)["payload"]["sha256"]
    assert info["provenance"]["training_rows"] == 420
    assert info["manifest"]["model"]["model"] == model.manifest()["model"]


def test_openapi_schema_is_typed(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["PatientRecord"]
    assert set(record["required"]) == set(PREINFUSION_COLUMNS)
    assert set(OUTCOME_COLUMNS) <= set(record["properties"])
    prediction = schema["components"]["schemas"]["Prediction"]
    assert {"efs_6mo", "efs_6mo_lo", "risk_group", "top_reasons", "curve"} <= set(prediction["properties"])
    assert "422" in schema["paths"]["/predict"]["post"]["responses"]


def test_record_warnings_go_to_the_caller_not_to_stderr(client: TestClient, capfd: pytest.CaptureFixture[str]) -> None:
    record = dict(_records(1)[0], patient_id="WARN-1", blina_exposed=None, blina_response=None)
    response = client.post("/predict", json=[record])
    assert response.status_code == 200
    # the unknown exposure is marginalised and named in the record's own "assumptions" field; nothing about the
    # patient reaches the server's stderr, and no misleading "encoded as the reference level" note is returned
    assert "averaged over" in response.json()[0]["assumptions"]
    notes = json.loads(response.headers.get("x-carrisk-warnings", "[]"))
    assert not any("reference level" in note for note in notes)
    assert "not seen in training" not in capfd.readouterr().err


def test_unexpected_errors_are_500_without_the_message(model: Any, caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def __init__(self, real: Any) -> None:
            self.real = real

        def manifest(self) -> dict[str, Any]:
            return self.real.manifest()

        def predict_efs(self, records: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
            raise RuntimeError(f"failed on {records['patient_id'].iloc[0]}")

    broken = TestClient(create_app(Broken(model), warm_up=False), raise_server_exceptions=False)
    response = broken.post("/predict", json=[dict(_records(1)[0], patient_id="SECRET-77")])
    assert response.status_code == 500 and "SECRET-77" not in response.text
    assert "RuntimeError" in caplog.text and "SECRET-77" not in caplog.text


class _Options(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.select: str | None = None
        self.options: dict[str, list[str]] = {}
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "select":
            self.select = attr["id"]
            self.options[self.select or ""] = []
        elif tag == "option" and self.select:
            self.options[self.select].append(attr.get("value") or "")
        for key in ("src", "href"):
            if attr.get(key):
                self.sources.append(attr[key] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None


def test_every_form_option_is_a_spelling_the_schema_accepts() -> None:
    parser = _Options()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    base = dict(_records(1)[0], blina_exposed="yes")
    rows = []
    for select, values in parser.options.items():
        column = "marrow_blasts_pct" if select == "marrow_kind" else select
        assert column in PREINFUSION_COLUMNS, select
        for value in values:
            if value != "percent":
                rows.append(dict(base, patient_id=f"{column}={value}", **{column: value or None}))
    validate_records(pd.DataFrame(rows), outcomes="ignore")
    inputs = set(re.findall(r'<input id="(\w+)"', (STATIC / "index.html").read_text(encoding="utf-8")))
    assert set(PREINFUSION_COLUMNS) - {"patient_id"} <= inputs | set(parser.options)


def test_page_uses_no_network_assets_and_no_storage() -> None:
    parser = _Options()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    assert parser.sources and not any(re.match(r"^(https?:)?//", s) for s in parser.sources)
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    style = (STATIC / "style.css").read_text(encoding="utf-8")
    for forbidden in ("localStorage", "sessionStorage", "document.cookie", "indexedDB", "http://", "https://"):
        assert forbidden not in script.replace("http://www.w3.org/2000/svg", "")
    assert "@import" not in style and "url(" not in style


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_CELLS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | st.floats()
    | st.sampled_from(["", "12%", "M3", "MRD neg", "yes", "no", "CNS3", "dim", "NR", "CR", "tisagenlecleucel", "<0.01"])
    | st.text(max_size=10)
    | st.lists(st.integers(), max_size=2)
)


@st.composite
def _record_bodies(draw: st.DrawFn) -> list[dict[str, Any]]:
    base = _records(1)[0]
    body = []
    for i in range(draw(st.integers(1, 3))):
        record = dict(base, patient_id=f"F{i}")
        for column in draw(st.lists(st.sampled_from([*PREINFUSION_COLUMNS, "efs_days", "extra"]), max_size=5)):
            if draw(st.booleans()):
                record[column] = draw(_CELLS)
            else:
                record.pop(column, None)
        body.append(record)
    return body


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_JSON)
def test_fuzzed_json_bodies_never_cause_a_server_error(client: TestClient, body: Any) -> None:
    # Python's json writes NaN and Infinity, which the server's parser also reads: they must not break it either.
    content = json.dumps(body).encode()
    for path in ("/predict", "/explain"):
        response = client.post(path, content=content, headers={"content-type": "application/json"})
        assert response.status_code in (200, 422)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_record_bodies())
def test_fuzzed_records_are_predicted_or_refused_never_a_server_error(client: TestClient, body: Any) -> None:
    response = client.post("/predict", content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["problems"]
    else:
        assert [p["patient_id"] for p in response.json()] == [str(r["patient_id"]) for r in body]


def test_serve_command_refuses_a_public_address_without_the_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from carrisk.cli import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--allow-remote" in result.output
    (tmp_path / "token.txt").write_text("short")
    result = CliRunner().invoke(app, ["serve", "--token-file", str(tmp_path / "token.txt")])
    assert result.exit_code == 2 and "at least 16 characters" in result.output


def test_non_finite_numbers_are_reported_not_a_server_error(client: TestClient) -> None:
    record = json.dumps([dict(_records(1)[0], age_years=float("inf"), unknown_key=float("nan"))])
    response = client.post("/predict", content=record.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422
    by_field = {p["field"]: p for p in response.json()["problems"]}
    assert by_field["age_years"]["value"] == "inf" and by_field["unknown_key"]["value"] == "nan"


def test_top_zero_skips_the_reasons_and_keeps_the_numbers(client: TestClient, model: Any) -> None:
    records = _records(3)
    without = client.post("/predict?top=0", json=records).json()
    expected = json.loads(json.dumps(model.predict_efs(pd.DataFrame(records), top=0).to_dict("records")))
    assert without == expected and all(p["top_reasons"] == [] for p in without)
    full = client.post("/predict", json=records).json()
    assert [p["efs_6mo"] for p in without] == [p["efs_6mo"] for p in full]
    assert client.post("/predict?top=-1", json=records).status_code == 422
