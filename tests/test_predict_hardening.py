"""Prediction under stress: valid records always predict, chunks change nothing, nothing valid is left."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sksurv.util import Surv

from carrisk import fit_efs_model, simulate_cohort, survival_target
from carrisk.schema import (
    MAX_AGE_YEARS,
    MAX_MONTHS_SINCE_HSCT,
    MAX_PRIOR_HSCT,
    MAX_PRIOR_RELAPSES,
    RecordError,
    validate_records,
)

SCALARS = ["efs_6mo", "efs_6mo_lo", "efs_6mo_hi", "efs_12mo", "efs_12mo_lo", "efs_12mo_hi"]


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(n=240, seed=21)


@pytest.fixture(scope="module")
def models(cohort):
    y = survival_target(cohort.records)
    forest = fit_efs_model(
        cohort.records, y, "rsf", seed=0, n_estimators=25, min_samples_leaf=10, grid={}, causes=False
    )
    cox = fit_efs_model(cohort.records, y, "coxnet", seed=0, grid={}, n_bootstrap=10, causes=False)
    return {"rsf": forest, "coxnet": cox}


@pytest.mark.parametrize("name", ["rsf", "coxnet"])
def test_chunked_prediction_equals_unchunked(models, cohort, name):
    """Rows are predicted independently: chunks change nothing but the rounding of BLAS matrix products.

    The forest's curves and point estimates are sums over trees in a fixed order and match bit for bit; matrix
    products (the Cox linear predictor, the jackknife covariance) may differ in the last bit with the number of
    rows, so those are compared to 1e-12.
    """
    records = cohort.records.head(37)
    whole = models[name].predict_efs(records, chunk_rows=10_000)
    chunked = models[name].predict_efs(records, chunk_rows=5)
    assert whole["patient_id"].tolist() == chunked["patient_id"].tolist()
    assert whole["risk_group"].tolist() == chunked["risk_group"].tolist()
    np.testing.assert_allclose(chunked[SCALARS].to_numpy(), whole[SCALARS].to_numpy(), rtol=0, atol=1e-12)
    if name == "rsf":
        assert np.array_equal(chunked[["efs_6mo", "efs_12mo"]].to_numpy(), whole[["efs_6mo", "efs_12mo"]].to_numpy())
        assert whole["curve"].tolist() == chunked["curve"].tolist()
    for a, b in zip(whole["top_reasons"], chunked["top_reasons"]):
        assert [r["variable"] for r in a] == [r["variable"] for r in b]
        np.testing.assert_allclose([r["effect"] for r in a], [r["effect"] for r in b], rtol=0, atol=1e-12)


def test_every_row_invalid_with_skip_invalid_gives_an_empty_table_with_its_columns(models, example_records):
    bad = example_records.assign(age_years="400")
    table = models["rsf"].predict_efs(bad, skip_invalid=True)
    assert table.empty and {"patient_id", *SCALARS, "risk_group", "top_reasons", "curve"} <= set(table.columns)
    assert len(table.attrs["rejected"]) == len(bad)
    with pytest.raises(RecordError):
        models["rsf"].predict_efs(bad)


def test_the_event_count_in_the_metadata_does_not_depend_on_the_field_order(cohort):
    y = survival_target(cohort.records)
    swapped = np.empty(len(y), dtype=[("time", float), ("event", bool)])
    swapped["time"], swapped["event"] = y["time"], y["event"]
    model = fit_efs_model(cohort.records, swapped, "coxph", seed=0, grid={}, n_bootstrap=2, causes=False)
    assert model.metadata["training_data"]["events"] == int(y["event"].sum())
    assert Surv.from_arrays(y["event"], y["time"]).dtype.names[0] != "time"  # the order that used to hide the bug


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("months_since_last_hsct", "inf"),
        ("months_since_last_hsct", "1e999"),
        ("age_years", "-inf"),
        ("age_years", "41"),
        ("prior_relapses", "Infinity"),
        ("prior_relapses", "21"),
        ("prior_hsct_count", "11"),
        ("months_since_last_hsct", "481"),
        ("marrow_blasts_pct", "inf"),
        ("efs_days", "inf"),
        ("efs_days", "10001"),
        ("os_days", "1e6"),
    ],
)
def test_non_finite_and_implausible_numbers_are_rejected(example_records, column, value):
    records = example_records.copy()
    records.loc[1, column] = value  # EX-02 had a transplant, so months_since_last_hsct applies
    with pytest.raises(RecordError) as err:
        validate_records(records, outcomes="required")
    assert [(p.row, p.column) for p in err.value.problems] == [(2, column)]


_YES_NO = st.sampled_from(["yes", "no", "Y", "N", "1", "0", "true", "", "unknown"])
_NUMBER_TEXT = st.one_of(st.just(""), st.floats(0, 1).map(str))
_RECORD_CELLS = {
    "age_years": st.one_of(st.just(""), st.floats(0, MAX_AGE_YEARS, allow_nan=False).map(repr)),
    "sex": st.sampled_from(["M", "F", "male", "female", "", "NA"]),
    "car_product": st.sampled_from(["tisagenlecleucel", "Kymriah", "NCI 19-28z", "PLAT-02", "huCART19", "other", ""]),
    "marrow_blasts_pct": st.one_of(
        st.sampled_from(["M1", "M2", "M3", "MRD negative", "<0.01", "12%", "", "0", "100"]),
        st.floats(0, 100, allow_nan=False).map(lambda v: f"{v:.4f}"),
    ),
    "cns_status": st.sampled_from(["CNS1", "CNS2", "CNS3", "2b", "", "3"]),
    "extramedullary_disease": _YES_NO,
    "cd19_expression": st.sampled_from(["bright", "dim", "partial loss", "negative", "no disease", "", "CD19+"]),
    "kmt2a_status": st.sampled_from(["rearranged", "not rearranged", "not tested", "", "KMT2A-r", "germline"]),
    "cytogenetics": st.sampled_from(["46,XX", "t(4;11)(q21;q23)", "KMT2A::MLLT1", "", "hyperdiploid"]),
    "prior_relapses": st.one_of(st.just(""), st.integers(0, MAX_PRIOR_RELAPSES).map(str)),
    "down_syndrome": _YES_NO,
    "prior_inotuzumab": _YES_NO,
}


@st.composite
def valid_records(draw):
    n = draw(st.integers(1, 8))
    rows = []
    for i in range(n):
        row = {"patient_id": f"P{i}", **{k: draw(v) for k, v in _RECORD_CELLS.items()}}
        row["blina_exposed"] = draw(_YES_NO)
        responses = ["CR", "MRD neg", "no response", "PR", "not evaluable", ""]
        exposed_no = row["blina_exposed"] in ("no", "N", "0")
        row["blina_response"] = "" if exposed_no else draw(st.sampled_from(responses))
        row["prior_hsct_count"] = draw(st.one_of(st.just(""), st.integers(0, MAX_PRIOR_HSCT).map(str)))
        has_transplant = row["prior_hsct_count"] not in ("", "0")
        months = st.floats(0, MAX_MONTHS_SINCE_HSCT, allow_nan=False).map(repr)
        row["months_since_last_hsct"] = draw(st.one_of(st.just(""), months)) if has_transplant else ""
        rows.append(row)
    return pd.DataFrame(rows).replace("", np.nan)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=valid_records())
def test_records_that_pass_validation_always_predict(models, records):
    validate_records(records, outcomes="ignore")
    for model in models.values():
        table = model.predict_efs(records, top=2)
        assert table["patient_id"].tolist() == records["patient_id"].tolist()
        values = table[SCALARS].to_numpy(dtype=float)
        assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))


def test_simulated_transplant_gaps_stay_within_the_plausible_range():
    records = simulate_cohort(n=300, seed=4, messy=False, hsct_months_sdlog=4.0).records  # a heavy tail
    gaps = records["months_since_last_hsct"].dropna()
    assert gaps.max() == MAX_MONTHS_SINCE_HSCT and (gaps >= 0).all()
    validate_records(records, outcomes="required")
