"""Typed request and response bodies of the HTTP API (they generate its OpenAPI schema).

A record in a request is one patient in the record schema of ``docs/records.md``: every pre-infusion column is
a required key whose value may be ``null`` (missing), written with any spelling ``carrisk validate`` accepts
(``"12%"``, ``"M3"``, ``"MRD neg"``, ``true``...). The spellings themselves are checked by
:func:`carrisk.validate_records`, so the API and the command line accept exactly the same records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, WithJsonSchema, create_model

from carrisk.schema import OUTCOME_RULES, PREINFUSION_RULES


def _scalar(value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ValueError("expected a string, a number, true/false or null, not an object or a list")
    return value


#: One cell: text, a number, true/false or null (missing), checked for its spelling by the record schema.
Cell = Annotated[
    Any,
    AfterValidator(_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean", "null"]}),
]


def _cell(column: str, *, optional: bool = False) -> Any:
    rule = PREINFUSION_RULES.get(column) or OUTCOME_RULES[column]
    description = f"{rule.expected} (see docs/records.md)"
    return Field(default=None, description=description) if optional else Field(description=description)


class PatientRecord(BaseModel):
    """One patient's pre-infusion record; ``null`` marks a missing value. Outcome columns are optional and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "patient_id": "EX-01",
                "age_years": 12.7,
                "sex": "M",
                "car_product": "tisagenlecleucel",
                "blina_exposed": "no",
                "blina_response": None,
                "marrow_blasts_pct": "0.05",
                "cns_status": "CNS1",
                "extramedullary_disease": "no",
                "cd19_expression": "bright",
                "kmt2a_status": "not rearranged",
                "cytogenetics": "46,XY",
                "prior_hsct_count": 0,
                "months_since_last_hsct": None,
                "prior_relapses": 1,
                "down_syndrome": "no",
                "prior_inotuzumab": "no",
            }
        },
    )

    patient_id: StrictStr | StrictInt = _cell("patient_id")
    age_years: Cell = _cell("age_years")
    sex: Cell = _cell("sex")
    car_product: Cell = _cell("car_product")
    blina_exposed: Cell = _cell("blina_exposed")
    blina_response: Cell = _cell("blina_response")
    marrow_blasts_pct: Cell = _cell("marrow_blasts_pct")
    cns_status: Cell = _cell("cns_status")
    extramedullary_disease: Cell = _cell("extramedullary_disease")
    cd19_expression: Cell = _cell("cd19_expression")
    kmt2a_status: Cell = _cell("kmt2a_status")
    cytogenetics: Cell = _cell("cytogenetics")
    prior_hsct_count: Cell = _cell("prior_hsct_count")
    months_since_last_hsct: Cell = _cell("months_since_last_hsct")
    prior_relapses: Cell = _cell("prior_relapses")
    down_syndrome: Cell = _cell("down_syndrome")
    prior_inotuzumab: Cell = _cell("prior_inotuzumab")
    efs_days: Cell = _cell("efs_days", optional=True)
    efs_event: Cell = _cell("efs_event", optional=True)
    day28_cr: Cell = _cell("day28_cr", optional=True)
    relapse_phenotype: Cell = _cell("relapse_phenotype", optional=True)
    os_days: Cell = _cell("os_days", optional=True)
    death: Cell = _cell("death", optional=True)


def generic_record_model(features: Sequence[str]) -> type[BaseModel]:
    """The request record of a generic-mode model: one required key per feature column (``null``: missing).

    The keys are the model's own column names, whatever they are (each field is named ``column_<i>`` with the
    column name as its alias). ``patient_id`` is optional: a record without one is named by the model's
    identifier column, if the record has it, else by its position in the request. Values are checked by the
    model's own feature spec (:meth:`carrisk.EFSModel.validate`), as ``carrisk predict`` checks a table.
    """
    fields: dict[str, Any] = {
        "patient_id": (StrictStr | StrictInt | None, Field(default=None, description="an identifier (optional)"))
    }
    for i, name in enumerate(features):
        fields[f"column_{i}"] = (
            Cell,
            Field(alias=name, description=f"the model's feature column {name!r}: a number, a level or null"),
        )
    return create_model("GenericRecord", __config__=ConfigDict(extra="allow"), **fields)


class Reason(BaseModel):
    """One clinical variable's effect on the patient's 6-month EFS (SHAP, probability scale)."""

    variable: str
    value: str = Field(description="the patient's value as the model read it")
    effect: float = Field(description="change in the EFS probability at the explanation horizon")


class Curve(BaseModel):
    """The predicted EFS curve on the model's time grid (a step function, right-continuous)."""

    days: list[float]
    efs: list[float]


class Band(BaseModel):
    """Pointwise 95% interval of the model's EFS estimate at each grid time up to 2 years.

    It describes the model's uncertainty (another training cohort of the same size), not the patient's outcome.
    """

    days: list[float]
    lo: list[float | None]
    hi: list[float | None]


class Prediction(BaseModel):
    """One patient's prediction: the ``carrisk predict --json`` contract (a missing interval is ``null``)."""

    patient_id: str
    efs_6mo: float
    efs_6mo_lo: float | None
    efs_6mo_hi: float | None
    efs_12mo: float
    efs_12mo_lo: float | None
    efs_12mo_hi: float | None
    risk_group: Literal["low", "intermediate", "high"]
    top_reasons: list[Reason]
    assumptions: str = Field(
        default="", description="what was assumed for a level too rare in training (empty when nothing was)"
    )
    curve: Curve
    band: Band | None = Field(default=None, description="only with ?band=true")


class Explanation(BaseModel):
    """SHAP explanation of one patient's EFS at a horizon: ``base_value + sum(contributions) == prediction``."""

    patient_id: str
    output: Literal["efs_at_horizon"] = "efs_at_horizon"
    horizon_days: float
    base_value: float
    prediction: float
    contributions: dict[str, float]
    values: dict[str, str]


class Problem(BaseModel):
    """One problem with a request: ``record`` is the 0-based index in the posted list (null: the whole body)."""

    record: int | None
    patient_id: str | None = None
    field: str | None
    value: Any = None
    expected: str


class ProblemReport(BaseModel):
    """Every problem found in a request (status 422)."""

    detail: str
    problems: list[Problem]


class ErrorMessage(BaseModel):
    """A refused request (401, 413, 429, 500)."""

    detail: str


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    token_required: bool


class ModelInfo(BaseModel):
    """What the loaded bundle is: provenance, intended use, the manifest and the model card."""

    model: str
    mode: Literal["clinical", "generic"] = Field(
        description="clinical: reads carrisk records (the calculator page works); generic: its own feature columns"
    )
    features: list[str] = Field(description="the record keys the model reads (besides patient_id)")
    synthetic_training_data: bool
    intended_use: str
    warning: str
    provenance: dict[str, Any]
    limits: dict[str, int | float]
    manifest: dict[str, Any]
    model_card: str | None
