"""The records a study would hold: canonical encodings, and the messy mode's accepted variant spellings
(``docs/records.md``) and blank cells."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from carrisk.schema import RECORD_COLUMNS
from carrisk.simulate.parameters import CAR_PRODUCTS

# Columns that may be blanked at `missing_rate` (never patient_id, blina_exposed or outcomes).
_MISSABLE_COLUMNS = (
    "age_years",
    "sex",
    "car_product",
    "blina_response",
    "marrow_blasts_pct",
    "cns_status",
    "extramedullary_disease",
    "cd19_expression",
    "kmt2a_status",
    "cytogenetics",
    "prior_hsct_count",
    "months_since_last_hsct",
    "prior_relapses",
    "down_syndrome",
    "prior_inotuzumab",
)
_MISSING_TOKENS = ("NA", "N/A", "unknown", "not known", ".")
_TOKEN_MISSING_COLUMNS = ("sex", "car_product", "cns_status", "extramedullary_disease", "down_syndrome")

# Accepted spellings from docs/records.md, used by messy mode: column -> canonical value -> spellings, or, for the
# marrow's "undetectable", the spellings themselves.
_SPELLINGS: dict[str, Any] = {
    "sex": {"M": ("M", "male", "Male"), "F": ("F", "female", "Female")},
    "car_product": {
        "tisagenlecleucel": ("tisagenlecleucel", "Kymriah", "tisa-cel", "CTL019"),
        "nci_cd28": ("NCI", "NCI CD19-28z", "19-28z"),
        "scri_plat02": ("SCRI", "Seattle", "PLAT-02"),
        "chop_penn": ("CHOP", "Penn", "CHOP/Penn", "CTL119", "huCART19"),
    },
    "blina_response": {
        "responder": ("CR", "CRi", "MRD-negative CR", "MRD neg", "MRD-positive CR"),
        "nonresponder": ("PR", "NR", "no response", "refractory", "PD", "no CR"),
        "unknown": ("not evaluable", "NE", ""),
    },
    "cns_status": {"CNS1": ("CNS1", "1"), "CNS2": ("CNS2", "2", "CNS 2b"), "CNS3": ("CNS3", "3", "CNS-3")},
    "cd19_expression": {
        "bright": ("bright", "CD19+ bright", "normal", "positive", "CD19+"),
        "dim": ("dim", "CD19 dim", "weak"),
        "partial": ("partial", "partial loss", "heterogeneous", "CD19-neg subpopulation", "bimodal"),
    },
    "kmt2a_status": {
        "rearranged": ("rearranged", "KMT2A-r", "MLL-r", "positive"),
        "not_rearranged": ("not rearranged", "negative", "germline"),
    },
    "marrow_undetectable": ("<0.01", "MRD negative", "MRD neg", "undetectable", "0"),
}
_YES_NO_STYLES = (("yes", "no"), ("Y", "N"), ("1", "0"))
_KMT2A_FUSIONS = ("t(4;11)(q21;q23)", "KMT2A-AFF1", "KMT2A::MLLT1", "MLL-r", "11q23 rearranged")
_OTHER_KARYOTYPES = ("hyperdiploid", "ETV6::RUNX1", "iAMP21")


def _canonical_records(
    patient_id: np.ndarray, x: Mapping[str, np.ndarray], outcomes: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    n = patient_id.size
    blina_response = np.full(n, np.nan, dtype=object)
    blina_response[x["responder"] & x["response_recorded"]] = "CR"
    blina_response[x["nonresponder"] & x["response_recorded"]] = "NR"
    blina_response[x["exposed"] & ~x["response_recorded"]] = "not evaluable"
    cd19 = np.where(x["cd19_partial"], "partial", np.where(x["cd19_dim_partial"], "dim", "bright"))
    male = x["male"]
    normal_karyotype = np.where(male, "46,XY", "46,XX")
    cytogenetics = np.where(x["kmt2a"], "KMT2A-AFF1", normal_karyotype).astype(object)
    blasts = np.where(x["marrow_high"], np.round(x["blasts"], 1), np.round(x["blasts"], 3))
    blasts = np.where(x["mrd_positive"], np.maximum(blasts, 0.01), blasts)
    records = pd.DataFrame(
        {
            "patient_id": patient_id,
            "age_years": np.round(x["age"], 1),
            "sex": np.where(male, "M", "F").astype(object),
            "car_product": np.asarray(CAR_PRODUCTS, dtype=object)[x["product"]],
            "blina_exposed": x["exposed"].astype(bool),
            "blina_response": blina_response,
            "marrow_blasts_pct": blasts,
            "cns_status": np.char.add("CNS", x["cns"].astype(str)).astype(object),
            "extramedullary_disease": x["emd"].astype(bool),
            "cd19_expression": cd19.astype(object),
            "kmt2a_status": np.where(x["kmt2a"], "rearranged", "not_rearranged").astype(object),
            "cytogenetics": cytogenetics,
            "prior_hsct_count": x["hsct_count"],
            "months_since_last_hsct": np.round(x["hsct_months"], 1),
            "prior_relapses": x["prior_relapses"],
            "down_syndrome": x["down"].astype(bool),
            "prior_inotuzumab": x["inotuzumab"].astype(bool),
            **outcomes,
        }
    )
    return records[list(RECORD_COLUMNS)]


def _pick(rng: np.random.Generator, options: tuple[str, ...], size: int) -> np.ndarray:
    return np.asarray(options, dtype=object)[rng.integers(0, len(options), size=size)]


def _messy_records(
    canonical: pd.DataFrame,
    x: Mapping[str, np.ndarray],
    missing_rate: float,
    p: Mapping[str, Any],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Re-spell the canonical records with accepted variants and blank cells at ``missing_rate``."""
    n = len(canonical)
    out = canonical.copy()

    for column in ("sex", "car_product", "cns_status", "cd19_expression"):
        values = canonical[column].to_numpy(dtype=object)
        respelled = values.copy()
        for canonical_value, options in _SPELLINGS[column].items():
            mask = values == canonical_value
            respelled[mask] = _pick(rng, options, int(mask.sum()))
        out[column] = respelled

    response = np.full(n, np.nan, dtype=object)
    for group, mask in (
        ("responder", x["responder"] & x["response_recorded"]),
        ("nonresponder", x["nonresponder"] & x["response_recorded"]),
        ("unknown", x["exposed"] & ~x["response_recorded"]),
    ):
        response[mask] = _pick(rng, _SPELLINGS["blina_response"][group], int(mask.sum()))
    response[response == ""] = np.nan
    out["blina_response"] = response

    yes_no_style = rng.integers(0, len(_YES_NO_STYLES), size=n)
    yes = np.array([style[0] for style in _YES_NO_STYLES], dtype=object)[yes_no_style]
    no = np.array([style[1] for style in _YES_NO_STYLES], dtype=object)[yes_no_style]
    for column in ("blina_exposed", "extramedullary_disease", "down_syndrome", "prior_inotuzumab"):
        out[column] = np.where(canonical[column].to_numpy(dtype=bool), yes, no)

    out["marrow_blasts_pct"] = _messy_blasts(canonical["marrow_blasts_pct"].to_numpy(dtype=float), x, rng)

    kmt2a_status, cytogenetics = _messy_kmt2a(x, p, rng)
    out["kmt2a_status"] = kmt2a_status
    out["cytogenetics"] = cytogenetics

    for column in ("prior_hsct_count", "prior_relapses"):
        out[column] = out[column].astype("Int64")

    for column in _MISSABLE_COLUMNS:
        mask = rng.random(n) < missing_rate
        if column in _TOKEN_MISSING_COLUMNS:
            tokens = _pick(rng, ("", "", "", *_MISSING_TOKENS), n)
            values = out[column].to_numpy(dtype=object)
            values[mask] = tokens[mask]
            values[values == ""] = np.nan
            out[column] = values
        else:
            out.loc[mask, column] = pd.NA if str(out[column].dtype) == "Int64" else np.nan
    return out[list(RECORD_COLUMNS)]


def _messy_blasts(blasts: np.ndarray, x: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    n = blasts.size
    style = rng.random(n)
    m_code = rng.random(n) < 0.05
    text = np.empty(n, dtype=object)
    undetectable = x["undetectable"]
    text[undetectable] = _pick(rng, _SPELLINGS["marrow_undetectable"], int(undetectable.sum()))
    for i in np.flatnonzero(x["mrd_positive"]):
        value = f"{blasts[i]:.3g}"
        text[i] = "M1" if m_code[i] else (value + "%" if style[i] < 0.3 else value)
    for i in np.flatnonzero(x["marrow_high"]):
        if m_code[i]:
            text[i] = "M3" if blasts[i] > 25 else "M2"
        elif style[i] < 0.3:
            text[i] = f"{blasts[i]:.0f}%"
        elif style[i] < 0.6:
            text[i] = f"{blasts[i]:.0f}"
        else:
            text[i] = f"{blasts[i]:.1f}"
    return text


def _messy_kmt2a(
    x: Mapping[str, np.ndarray], p: Mapping[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """KMT2A status spelled out, left blank (fusion then only in ``cytogenetics``) or ``not tested``."""
    n = x["kmt2a"].size
    u = rng.random(n)
    not_tested = u < p["kmt2a_not_tested_share"]
    blank_status = ~not_tested & (u < p["kmt2a_not_tested_share"] + p["kmt2a_status_blank_share"])
    status = np.where(
        x["kmt2a"],
        _pick(rng, _SPELLINGS["kmt2a_status"]["rearranged"], n),
        _pick(rng, _SPELLINGS["kmt2a_status"]["not_rearranged"], n),
    ).astype(object)
    status[not_tested] = "not tested"
    status[blank_status] = np.nan

    normal = np.where(x["male"], "46,XY", "46,XX").astype(object)
    other = _pick(rng, _OTHER_KARYOTYPES, n)
    karyotype = np.where(rng.random(n) < 0.6, normal, other)
    cytogenetics = np.where(x["kmt2a"], _pick(rng, _KMT2A_FUSIONS, n), karyotype).astype(object)
    cytogenetics[not_tested] = np.nan
    return status, cytogenetics
