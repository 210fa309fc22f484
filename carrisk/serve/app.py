"""The FastAPI application: the calculator page and the HTTP API over one loaded model.

The model is loaded once by the caller and handed to :func:`create_app`; no endpoint takes a path, loads a
bundle or reads or writes a file (the page's three assets are read into memory when the app is built). Model
calls are serialised by a lock: the model builds its explainer and interval priors lazily and is not
thread-safe, and on two cores one model call at a time loses nothing (NumPy work holds the GIL for most of a
prediction).

Nothing about a patient is kept or logged: bodies are never logged (uvicorn's access log has the request line
and status only), library warnings raised while predicting (which can quote a patient's value) are returned to
the caller in the ``X-Carrisk-Warnings`` header instead of going to the server's stderr, unexpected errors are
logged by exception type only, and responses carry ``Cache-Control: no-store`` and set no cookies.
"""

import hmac
import json
import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, TypeAdapter

from carrisk.predict import DEFAULT_HORIZONS
from carrisk.schema import (
    ID_COLUMN,
    RECORD_COLUMNS,
    SIX_MONTHS_DAYS,
    TWO_YEARS_DAYS,
    RecordError,
    read_records,
    validate_records,
)
from carrisk.serve.limits import BodySizeLimit, RateLimit, SecurityHeaders
from carrisk.serve.schemas import (
    ErrorMessage,
    Explanation,
    Health,
    ModelInfo,
    PatientRecord,
    Prediction,
    Problem,
    ProblemReport,
    generic_record_model,
)

__all__ = ["RESEARCH_USE_WARNING", "ServeSettings", "create_app"]

logger = logging.getLogger("carrisk.serve")

RESEARCH_USE_WARNING = (
    "Research tool, not for clinical decisions. Predictions describe a statistical model; "
    "they are not a prognosis for this patient."
)
SYNTHETIC_WARNING = "This model was trained on SYNTHETIC data: it has never seen a real patient."
#: Most grid points in the interval band (each is one more horizon to compute), and how far it reaches: the
#: page draws the first two years. Up to this many, the band has a value at every time the curve steps, so the
#: drawn band (a step function, like the curve) always contains the curve.
MAX_BAND_POINTS = 400
BAND_MAX_DAYS = TWO_YEARS_DAYS
WARNINGS_HEADER = "X-Carrisk-Warnings"
_T = TypeVar("_T")


@dataclass(frozen=True)
class ServeSettings:
    """Limits and access control of one server.

    Attributes
    ----------
    token : str or None
        When set, every API call except ``GET /health`` needs ``Authorization: Bearer <token>``.
    max_patients : int
        Most records in one request.
    max_body_bytes : int
        Largest request body; larger ones are refused with 413 before they are parsed.
    rate_limit_per_s : float
        Requests per second per client address (token bucket with a burst of the same size); 0 turns it off.
    """

    token: str | None = None
    max_patients: int = 1000
    max_body_bytes: int = 2_000_000
    rate_limit_per_s: float = 100.0


class _Model:
    """The loaded model behind a lock, with warnings captured instead of printed."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.band_days: list[float] | None = None

    def call(self, work: Callable[[], _T]) -> tuple[_T, list[str]]:
        # catch_warnings is process-wide; holding the lock keeps the model's own warnings inside this block.
        with self.lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = work()
        # Warnings about the records (unseen levels, values read as missing) go back to the caller; library
        # performance warnings are nobody's business at the bedside.
        notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        return result, list(dict.fromkeys(notes))

    def predict(self, frame: pd.DataFrame, band: bool, top: int = 3) -> tuple[list[dict[str, Any]], list[str]]:
        def work() -> list[dict[str, Any]]:
            if not band:
                return self.model.predict_efs(frame, top=top).to_dict("records")
            days = self._band_days(frame)
            grid = {f"band_{i}": d for i, d in enumerate(days)}
            table = self.model.predict_efs(frame, horizons=DEFAULT_HORIZONS | grid, top=top)
            rows = table.drop(columns=[f"efs_{name}{end}" for name in grid for end in ("", "_lo", "_hi")])
            lo = table[[f"efs_{name}_lo" for name in grid]].to_numpy(dtype=float).tolist()
            hi = table[[f"efs_{name}_hi" for name in grid]].to_numpy(dtype=float).tolist()
            return [
                {**row, "band": {"days": days, "lo": row_lo, "hi": row_hi}}
                for row, row_lo, row_hi in zip(rows.to_dict("records"), lo, hi)
            ]

        return self.call(work)

    def _band_days(self, frame: pd.DataFrame) -> list[float]:
        if self.band_days is None:
            grid = self.model.predict_efs(frame.head(1), top=0)["curve"].iloc[0]["days"]
            days = [d for d in grid if d <= BAND_MAX_DAYS] or list(grid[:1])
            if len(days) > MAX_BAND_POINTS:
                days = [days[i] for i in np.linspace(0, len(days) - 1, MAX_BAND_POINTS).round().astype(int)]
            self.band_days = [float(d) for d in days]
        return self.band_days

    def explain(
        self, frame: pd.DataFrame, horizon: float, check: Callable[[pd.DataFrame], Any]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        def work() -> list[dict[str, Any]]:
            check(frame)
            result = self.model.explain(frame, horizon=horizon)
            shown = self.model.display_values(frame)
            base = np.broadcast_to(np.asarray(result.base_values, dtype=float), (len(frame),))
            return [
                {
                    "patient_id": str(frame["patient_id"].iloc[i]),
                    "horizon_days": horizon,
                    "base_value": float(base[i]),
                    "prediction": float(result.predictions[i]),
                    "contributions": dict(zip(result.feature_names, map(float, result.values[i]))),
                    "values": {k: str(v) for k, v in shown.iloc[i].items()},
                }
                for i in range(len(frame))
            ]

        return self.call(work)


@dataclass(frozen=True)
class _RecordShape:
    """What a request record is for this model: its pydantic model, keys, and the record check.

    A clinical model reads carrisk records (:class:`PatientRecord`, checked by the record schema); a generic-mode
    model reads its own feature columns (:func:`generic_record_model`, checked by the model's feature spec).
    """

    clinical: bool
    record: type[BaseModel]
    columns: tuple[str, ...]
    allowed: frozenset[str]
    check: Callable[[pd.DataFrame], Any]
    id_col: str | None = None


def _record_shape(model: Any, description: dict[str, Any]) -> _RecordShape:
    spec = description.get("feature_spec", {})
    extra = [str(c).split(":")[0] for c in [*spec.get("numeric", []), *spec.get("categorical", [])]]
    if description.get("mode", "clinical") == "clinical":
        return _RecordShape(
            True,
            PatientRecord,
            RECORD_COLUMNS,
            frozenset(RECORD_COLUMNS) | set(extra),
            lambda frame: validate_records(frame, outcomes="ignore", source="request"),
        )
    features = tuple(str(c) for c in description.get("features", extra))
    id_col = spec.get("id_col")
    outcomes = {spec.get("time_col"), spec.get("event_col"), id_col} - {None}
    return _RecordShape(
        False,
        generic_record_model(features),
        features,
        frozenset({ID_COLUMN, *features, *outcomes}),
        lambda frame: model.validate(frame, source="request"),
        id_col,
    )


def _number(value: Any) -> float | None:
    """A JSON-safe float: NaN (e.g. no interval for this model) becomes null."""
    number = float(value)
    return number if np.isfinite(number) else None


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_value(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _number(value)
    return None if value is None else str(value)


def _problem_value(value: Any) -> Any:
    """The offending value as JSON can carry it (NaN and infinities as text)."""
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return str(value)
    value = _json_value(value)
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _problems_from_record_error(err: RecordError, positions: Sequence[int] | None = None) -> list[Problem]:
    """``positions[k]`` is the request index of the frame's row k (default: the same)."""
    return [
        Problem(
            record=None if p.row is None else (p.row - 1 if positions is None else positions[p.row - 1]),
            patient_id=p.patient_id,
            field=p.column,
            value=_problem_value(p.value),
            expected=p.expected,
        )
        for p in err.problems
    ]


def _problems_from_validation(errors: Sequence[Any]) -> list[Problem]:
    """Pydantic's errors as problems, one per (record, field)."""
    problems: dict[tuple[Any, ...], Problem] = {}
    for error in errors:
        loc = tuple(error.get("loc", ()))
        kind = error.get("type")
        if kind == "json_invalid":
            detail = (error.get("ctx") or {}).get("error", "")
            problems[loc] = Problem(record=None, field=None, expected=f"a valid JSON body ({detail} at {loc[-1]})")
        elif len(loc) >= 3 and loc[0] == "body" and isinstance(loc[1], int):
            if loc[:3] not in problems:
                problems[loc[:3]] = Problem(
                    record=loc[1],
                    field=str(loc[2]),
                    value=None if kind == "missing" else _problem_value(error.get("input")),
                    expected="this key (null when the value is missing)"
                    if kind == "missing"
                    else str(error.get("msg", "")).removeprefix("Value error, "),
                )
        elif len(loc) == 2 and loc[0] == "body" and isinstance(loc[1], int):
            problems[loc] = Problem(record=loc[1], field=None, expected="a record (a JSON object of column: value)")
        elif loc == ("body",) and kind in ("list_type", "missing"):
            problems[loc] = Problem(
                record=None, field=None, expected="a JSON list of patient records (Content-Type: application/json)"
            )
        else:
            field = ".".join(str(part) for part in loc[1:]) or None
            problems[loc] = Problem(record=None, field=field, expected=str(error.get("msg", "")))
    return list(problems.values())


def _every_problem(body: Any, shape: _RecordShape, found: Sequence[Problem], max_patients: int) -> list[Problem]:
    """``found`` plus every other problem of the posted records: unknown keys and unreadable values.

    So that one response lists everything to fix, the record schema also checks the records that failed the
    request's type checks (their missing keys and non-scalar values are read as missing here; those are already
    reported in ``found``).
    """
    allowed = shape.allowed
    problems = list(found)
    if not isinstance(body, list) or not body or len(body) > max_patients:
        return problems
    reported = {(p.record, p.field) for p in problems}
    positions: list[int] = []
    rows: list[dict[str, Any]] = []
    for index, record in enumerate(body):
        if not isinstance(record, dict):
            continue
        pid = record.get("patient_id")
        for name, value in record.items():
            if name not in allowed and (index, name) not in reported:
                problems.append(
                    Problem(
                        record=index,
                        patient_id=None if pid is None else str(pid),
                        field=name,
                        value=None if isinstance(value, dict | list) else _problem_value(value),
                        expected="no such column in the record schema (see docs/records.md); check the spelling"
                        if shape.clinical
                        else "no such column in this model's records (see GET /model: features); check the spelling",
                    )
                )
        positions.append(index)
        rows.append({c: None if isinstance(v, dict | list) else v for c, v in record.items() if c in allowed})
    if rows:
        frame = pd.DataFrame(rows, columns=list(dict.fromkeys([*shape.columns, *pd.DataFrame(rows).columns])))
        try:
            shape.check(frame)
        except RecordError as err:
            problems += [p for p in _problems_from_record_error(err, positions) if (p.record, p.field) not in reported]
    for problem in problems:
        record = body[problem.record] if problem.record is not None and problem.record < len(body) else None
        if problem.patient_id is None and isinstance(record, dict) and record.get("patient_id") is not None:
            problem.patient_id = str(record["patient_id"])
    return sorted(problems, key=lambda p: (p.record is not None, p.record or 0))


def _unprocessable(problems: list[Problem]) -> JSONResponse:
    report = ProblemReport(detail=f"{len(problems)} problem(s) in the request", problems=problems)
    return JSONResponse(status_code=422, content=report.model_dump())


class _Invalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems


def _asset(name: str) -> str:
    return (resources.files("carrisk.serve") / "static" / name).read_text(encoding="utf-8")


def create_app(
    model: Any,
    *,
    manifest: dict[str, Any] | None = None,
    model_card: str | None = None,
    settings: ServeSettings | None = None,
    warm_up: bool = True,
) -> FastAPI:
    """Build the web application over an already-loaded model.

    Parameters
    ----------
    model : EFSModel
        Any fitted model with ``predict_efs``, ``explain``, ``display_values`` and ``manifest``.
    manifest : dict, optional
        The bundle's ``manifest.json`` (default: ``model.manifest()``).
    model_card : str, optional
        The bundle's ``MODEL_CARD.md`` text, shown by ``GET /model``.
    settings : ServeSettings, optional
        Token, request limits and rate limit.
    warm_up : bool
        Predict one bundled example patient now, so that the model's lazily built parts (explainer, interval
        priors along the band) are ready before the first request.

    Returns
    -------
    FastAPI
        Routes: ``GET /`` (the calculator page), ``POST /predict``, ``POST /explain``, ``GET /model``,
        ``GET /health``, ``GET /openapi.json``.
    """
    settings = settings or ServeSettings()
    served = _Model(model)
    description = model.manifest()
    manifest = manifest if manifest is not None else description
    shape = _record_shape(model, description)
    synthetic = bool(description.get("synthetic_training_data"))
    model_name = str(description.get("model", type(model).__name__))
    pages = {name: _asset(name) for name in ("index.html", "app.js", "style.css")}
    if warm_up:
        _warm_up(served, shape)

    app = FastAPI(
        title="carrisk",
        summary="Event-free survival after CD19 CAR T-cell therapy: risk calculator and HTTP API",
        description=f"{RESEARCH_USE_WARNING} {SYNTHETIC_WARNING if synthetic else ''}".strip(),
        version=str(manifest.get("versions", {}).get("carrisk", "")) or "unknown",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )
    app.add_middleware(RateLimit, per_second=settings.rate_limit_per_s, exempt=("/health",))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)

    bearer = HTTPBearer(auto_error=False, description="Required when the server was started with --token-file.")

    def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if settings.token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), settings.token.encode()):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = _problems_from_validation(exc.errors())
        return _unprocessable(_every_problem(exc.body, shape, found, settings.max_patients))

    @app.exception_handler(_Invalid)
    async def invalid_records(request: Request, exc: _Invalid) -> JSONResponse:
        return _unprocessable(exc.problems)

    def frame_of(records: list[Any]) -> pd.DataFrame:
        rows = [r.model_dump(by_alias=True) for r in records]
        if any(set(row) - shape.allowed for row in rows):
            raise _Invalid(_every_problem(rows, shape, [], settings.max_patients))
        frame = pd.DataFrame(rows)
        if not shape.clinical:  # a record without patient_id: its identifier column, else its position
            named = frame[ID_COLUMN]
            if shape.id_col in frame.columns:
                named = named.where(named.notna(), frame[shape.id_col])
            frame[ID_COLUMN] = named.where(named.notna(), pd.Series(range(len(frame))).astype(str)).astype(str)
        return frame

    def run(
        body: TypeAdapter[Any], work: Callable[[], tuple[list[dict[str, Any]], list[str]]], exclude_unset: bool = False
    ) -> Response:
        """The rows ``work`` returns, checked against the response model ``body`` and written by pydantic.

        FastAPI would do the same through ``json.dumps``, several times slower for curves of hundreds of points;
        pydantic writes a NaN (no interval) as null, as the contract says.
        """
        try:
            rows, notes = work()
            content = body.dump_json(body.validate_python(rows), exclude_unset=exclude_unset)
        except RecordError as err:
            raise _Invalid(_problems_from_record_error(err)) from None
        except Exception as err:
            # The message may quote a patient's value: log the type only.
            logger.error("prediction failed: %s", type(err).__name__)
            raise HTTPException(status_code=500, detail="internal error while predicting") from None
        headers = {WARNINGS_HEADER: json.dumps(notes)[:4000]} if notes else None
        return Response(content, media_type="application/json", headers=headers)

    predictions: TypeAdapter[Any] = TypeAdapter(list[Prediction])
    explanations: TypeAdapter[Any] = TypeAdapter(list[Explanation])

    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorMessage},
        413: {"model": ErrorMessage},
        422: {"model": ProblemReport},
        429: {"model": ErrorMessage},
    }
    Records = Annotated[
        list[shape.record],  # type: ignore[name-defined]
        Body(
            min_length=1,
            max_length=settings.max_patients,
            description=f"1 to {settings.max_patients} patients in the record schema",
        ),
    ]

    @app.post(
        "/predict",
        response_model=list[Prediction],
        response_model_exclude_unset=True,
        responses=errors,
        dependencies=[Depends(authorised)],
        summary="EFS curve, 6/12-month EFS with 95% intervals, risk group and top reasons per patient",
    )
    def predict(
        records: Records,
        band: Annotated[
            bool, Query(description="also return the pointwise 95% interval at each grid time up to 2 years")
        ] = False,
        top: Annotated[
            int,
            Query(ge=0, le=50, description="clinical variables in top_reasons (0 skips the SHAP computation)"),
        ] = 3,
    ) -> Response:
        """The ``carrisk predict --json`` contract, one item per record in input order."""
        frame = frame_of(records)
        return run(predictions, lambda: served.predict(frame, band, top), exclude_unset=True)

    @app.post(
        "/explain",
        response_model=list[Explanation],
        responses=errors,
        dependencies=[Depends(authorised)],
        summary="Exact SHAP contributions of every clinical variable to EFS at a horizon",
    )
    def explain(
        records: Records,
        horizon_days: Annotated[float, Query(gt=0, le=36525, description="days from infusion")] = SIX_MONTHS_DAYS,
    ) -> Response:
        """The ``carrisk explain --json`` contract: ``base_value + sum(contributions) == prediction``."""
        check_horizon = getattr(served.model, "check_horizon", None)
        if check_horizon is not None:
            try:
                check_horizon(horizon_days, "horizon_days")
            except ValueError as err:
                raise _Invalid(
                    [Problem(record=None, field="horizon_days", value=horizon_days, expected=str(err))]
                ) from None
        frame = frame_of(records)
        return run(explanations, lambda: served.explain(frame, horizon_days, shape.check))

    info = ModelInfo(
        model=model_name,
        mode="clinical" if shape.clinical else "generic",
        features=[str(c) for c in description.get("features", shape.columns)],
        synthetic_training_data=synthetic,
        intended_use=str(description.get("intended_use", "research")),
        warning=f"{RESEARCH_USE_WARNING} {SYNTHETIC_WARNING if synthetic else ''}".strip(),
        provenance=_provenance(manifest, description),
        limits={
            "max_patients": settings.max_patients,
            "max_body_bytes": settings.max_body_bytes,
            "rate_limit_per_s": settings.rate_limit_per_s,
        },
        manifest=_json_value(manifest),
        model_card=model_card,
    )

    @app.get("/model", response_model=ModelInfo, responses=errors, dependencies=[Depends(authorised)])
    def model_info() -> ModelInfo:
        """The loaded bundle: provenance, intended use, its manifest and model card."""
        return info

    @app.get("/health", response_model=Health)
    def health() -> Health:
        """Liveness: the model is loaded (no token needed; says whether the API needs one)."""
        return Health(model=model_name, token_required=settings.token is not None)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(pages["index.html"])

    @app.get("/app.js", include_in_schema=False)
    def script() -> Response:
        return Response(pages["app.js"], media_type="text/javascript")

    @app.get("/style.css", include_in_schema=False)
    def style() -> Response:
        return Response(pages["style.css"], media_type="text/css")

    return app


def _warm_up(served: _Model, shape: _RecordShape) -> None:
    if shape.clinical:
        with resources.as_file(resources.files("carrisk") / "data" / "example_patients.csv") as path:
            example = read_records(path).head(1)
    else:  # every feature missing (imputed): enough to build the explainer
        example = pd.DataFrame([{ID_COLUMN: "warm-up", **dict.fromkeys(shape.columns)}])
    try:
        served.predict(example, band=True)
    except Exception as err:  # a bundle for other records: the first request warms it up instead
        logger.warning("warm-up skipped: %s", type(err).__name__)


def _provenance(manifest: dict[str, Any], description: dict[str, Any]) -> dict[str, Any]:
    """The few facts the page shows about where the model came from."""
    training = description.get("training_data", {})
    harrell = description.get("cv_metrics", {}).get("harrell_c", {})
    return _json_value(
        {
            "model": description.get("model"),
            "hyperparameters": description.get("hyperparameters"),
            "created": manifest.get("created"),
            "payload_sha256": manifest.get("payload", {}).get("sha256"),
            "carrisk_version": manifest.get("versions", {}).get("carrisk"),
            "training_rows": training.get("rows"),
            "training_events": training.get("events"),
            "training_data_sha256": training.get("sha256"),
            "cv_harrell_c": harrell.get("mean"),
            "cv_harrell_c_range": harrell.get("ci"),
            "interval_method": description.get("interval_method"),
            "risk_cutpoints_efs_12mo": description.get("risk_cutpoints_efs_12mo"),
        }
    )
