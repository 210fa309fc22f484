"""Feature builders: encodings, row order, errors naming the cell, and scikit-learn compatibility."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from carrisk.features import (
    BlinatumomabStatus,
    CD19Expression,
    ClinicalFeatures,
    DiseaseBurden,
    FeatureSpec,
    KMT2ARearrangement,
    PriorTransplant,
    build_design_matrix,
)
from carrisk.schema import RecordError


def test_blinatumomab_one_hot_against_naive(example_records):
    out = BlinatumomabStatus().set_output(transform="pandas").fit_transform(example_records)
    assert list(out.columns) == [
        "blina_status_responder",
        "blina_status_nonresponder",
        "blina_status_exposed_unknown",
        "blina_status_unknown",
    ]
    assert out.sum(axis=1).le(1).all()
    # EX-03 is exposed with "no response"; EX-01 is naive (all zeros)
    assert out.loc[2, "blina_status_nonresponder"] == 1
    assert out.loc[0].sum() == 0


def test_disease_burden_categories_and_log_blasts(example_records):
    builder = DiseaseBurden().fit(example_records)
    table = builder.categorize(example_records)
    assert table["disease_burden"].tolist()[:8] == [
        "low_mrd_positive",
        "high",
        "high",
        "undetectable",
        "undetectable",
        "high",
        "low_mrd_unknown",
        "high",
    ]
    encoded = builder.set_output(transform="pandas").transform(example_records)
    assert encoded.loc[1, "marrow_blasts_log10"] == pytest.approx(np.log10(12.01))
    assert encoded.loc[3, "marrow_blasts_log10"] == pytest.approx(-2.0)  # "<0.01" -> undetectable
    assert encoded.loc[2, "marrow_blasts_log10"] == pytest.approx(np.log10(50.01))  # "M3": middle of 25-100 %
    assert np.isnan(encoded.loc[6, "marrow_blasts_log10"])  # "M1" spans several MRD decades: imputed later


def test_cd19_published_grouping_and_levels(example_records):
    grouped = CD19Expression().fit(example_records).categorize(example_records)["cd19"]
    levels = CD19Expression(grouping="levels").fit(example_records).categorize(example_records)["cd19"]
    assert grouped.tolist()[:7] == [
        "bright",
        "bright",
        "dim_or_partial",
        "bright",
        "dim_or_partial",
        "dim_or_partial",
        "dim_or_partial",
    ]
    assert levels.tolist()[:7] == ["bright", "bright", "dim", "bright", "partial", "partial", "partial"]


def test_kmt2a_reads_cytogenetics_when_status_blank(example_records):
    table = KMT2ARearrangement().fit(example_records).categorize(example_records)["kmt2a"]
    assert table.tolist() == [
        "not_rearranged",
        "rearranged",
        "rearranged",
        "not_rearranged",
        "rearranged",
        "not_tested",
        "rearranged",
        "rearranged",
        "rearranged",
        "not_rearranged",
        "not_tested",
        "rearranged",
        "unknown",
        "not_rearranged",
        "not_rearranged",
    ]


def test_prior_transplant_months_missing_when_none(example_records):
    out = PriorTransplant().set_output(transform="pandas").fit_transform(example_records)
    assert out.loc[0, "prior_hsct_any"] == 0 and np.isnan(out.loc[0, "months_since_last_hsct"])
    assert out.loc[4, "prior_hsct_count"] == 2 and out.loc[4, "months_since_last_hsct"] == 8


def test_unparseable_cells_raise_naming_every_cell(example_records):
    bad = example_records.copy()
    bad.loc[3, "cd19_expression"] = "purple"
    bad.loc[5, "marrow_blasts_pct"] = "lots"
    with pytest.raises(RecordError) as info:
        ClinicalFeatures().fit(bad)
    cells = {(p.row, p.patient_id, p.column, p.value) for p in info.value.problems}
    assert cells == {(4, "EX-04", "cd19_expression", "purple"), (6, "EX-06", "marrow_blasts_pct", "lots")}


def test_on_unknown_maps_to_unknown_with_a_warning(example_records):
    bad = example_records.copy()
    bad.loc[3, "cd19_expression"] = "purple"
    with pytest.warns(UserWarning, match="purple"):
        out = ClinicalFeatures(on_unknown="unknown").set_output(transform="pandas").fit_transform(bad)
    assert out.loc[3, "cd19_unknown"] == 1
    assert len(out) == len(bad)


def test_design_matrix_has_groups_for_every_column(example_records):
    builder = ClinicalFeatures().fit(example_records)
    names = list(builder.get_feature_names_out())
    assert set(builder.feature_groups_) == set(names)
    assert builder.feature_groups_["blina_status_nonresponder"] == "blina_status"
    assert builder.feature_groups_["kmt2a_rearranged"] == "kmt2a"
    assert builder.feature_groups_["months_since_last_hsct"] == "prior_hsct"


def test_clone_pipeline_and_pickle_round_trip(example_records):
    pipeline = Pipeline([("features", ClinicalFeatures()), ("impute", SimpleImputer(strategy="median"))])
    fitted = clone(pipeline).fit(example_records)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(fitted.transform(example_records), again.transform(example_records))
    assert not np.isnan(fitted.transform(example_records)).any()
    params = ClinicalFeatures(on_unknown="unknown").get_params()
    assert params == {"spec": None, "on_unknown": "unknown"}


def test_set_output_pandas_keeps_index(example_records):
    shuffled = example_records.sample(frac=1.0, random_state=1)
    out = ClinicalFeatures().set_output(transform="pandas").fit(example_records).transform(shuffled)
    assert list(out.index) == list(shuffled.index)


def test_generic_spec_infers_types_and_excludes_ids():
    table = pd.DataFrame(
        {
            "pid": range(30),
            "time": np.arange(1, 31),
            "status": [0, 1] * 15,
            "age": np.linspace(20, 80, 30),
            "grade": ["I", "II", "III"] * 10,
        }
    )
    spec = FeatureSpec.generic(table, "time", "status")
    assert spec.numeric == ("age",) and spec.categorical == ("grade",) and not spec.clinical
    assert any("pid" in note for note in spec.notes)
    design = build_design_matrix(table, spec)
    assert list(design.columns) == ["age", "grade_II", "grade_III"]


def test_generic_spec_one_hot_encodes_numeric_codes_marked_as_categories():
    codes = [1, 2, 3, 4, 5] * 6
    table = pd.DataFrame({"time": np.arange(1.0, 31.0), "event": [0, 1] * 15, "race": codes, "age": range(30)})
    # A bare digit-coded column is a number (a CSV has no dtypes) ...
    assert FeatureSpec.generic(table, "time", "event").numeric == ("race", "age")
    # ... unless its dtype says category (as scikit-survival's datasets do) or the caller marks it.
    as_category = table.assign(race=table["race"].astype(str).astype("category"))
    assert FeatureSpec.generic(as_category, "time", "event").categorical == ("race",)
    marked = FeatureSpec.generic(table, "time", "event", features=["race:category", "age"])
    assert marked.categorical == ("race",) and marked.numeric == ("age",)
    design = build_design_matrix(table, marked)
    assert list(design.columns) == ["age", "race_2", "race_3", "race_4", "race_5"]
    np.testing.assert_array_equal(design["race_3"], np.asarray(codes) == 3)


# ---------- property-based: random records built from the accepted vocabularies ----------
SPELLINGS = {
    "patient_id": None,
    "age_years": st.one_of(st.just(""), st.floats(0, 40, allow_nan=False).map(lambda v: f"{v:.1f}")),
    "sex": st.sampled_from(["M", "F", "male", "female", ""]),
    "car_product": st.sampled_from(["tisagenlecleucel", "Kymriah", "NCI", "SCRI PLAT-02", "CHOP/Penn", ""]),
    "blina_exposed": st.sampled_from(["yes", "Y", "1", "true", ""]),
    "blina_response": st.sampled_from(["CR", "CRi", "MRD neg", "PR", "NR", "refractory", "not evaluable", ""]),
    "marrow_blasts_pct": st.one_of(
        st.sampled_from(["<0.01", "MRD negative", "M1", "M2", "M3", ""]),
        st.floats(0, 100, allow_nan=False).map(lambda v: f"{v:.2f}%"),
        st.floats(0, 100, allow_nan=False).map(lambda v: f"{v:.3f}"),
    ),
    "cns_status": st.sampled_from(["CNS1", "CNS2", "CNS3", "1", "3", ""]),
    "extramedullary_disease": st.sampled_from(["yes", "no", "N", ""]),
    "cd19_expression": st.sampled_from(
        [
            "bright",
            "CD19+ bright",
            "dim",
            "partial loss",
            "heterogeneous",
            "CD19-neg subpopulation",
            "negative",
            "",
        ]
    ),
    "kmt2a_status": st.sampled_from(["rearranged", "not rearranged", "not tested", ""]),
    "cytogenetics": st.sampled_from(["46,XX", "t(4;11)(q21;q23)", "KMT2A::MLLT1", "hyperdiploid", ""]),
    "prior_hsct_count": st.sampled_from(["0", "1", "2", ""]),
    "months_since_last_hsct": st.just(""),
    "prior_relapses": st.sampled_from(["0", "1", "3", ""]),
    "down_syndrome": st.sampled_from(["yes", "no", ""]),
    "prior_inotuzumab": st.sampled_from(["yes", "no", ""]),
}
NUMERIC_INPUTS = {
    "marrow_blasts_log10": "marrow_blasts_pct",
    "age_years": "age_years",
    "prior_relapses": "prior_relapses",
    "down_syndrome": "down_syndrome",
    "prior_inotuzumab": "prior_inotuzumab",
    "prior_hsct_any": "prior_hsct_count",
    "prior_hsct_count": "prior_hsct_count",
}


@st.composite
def record_tables(draw):
    n = draw(st.integers(1, 12))
    rows = []
    for i in range(n):
        row = {c: draw(s) for c, s in SPELLINGS.items() if s is not None}
        row["patient_id"] = f"P{i}"
        rows.append(row)
    return pd.DataFrame(rows)[list(SPELLINGS)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_tables())
def test_random_records_keep_rows_and_have_nan_only_where_missing(records):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = ClinicalFeatures().set_output(transform="pandas").fit(records).transform(records)
    assert len(out) == len(records) and list(out.index) == list(records.index)
    for column in out.columns:
        nan_rows = out[column].isna()
        if column == "months_since_last_hsct":
            continue  # missing by design when there was no transplant
        source = NUMERIC_INPUTS.get(column)
        if source is None:
            assert not nan_rows.any(), column  # one-hot columns are never NaN
        else:
            raw = records[source]
            parseable_number = ~raw.isin(["", "M1"])
            assert not (nan_rows & parseable_number).any(), column


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    record_tables(),
    st.sampled_from(list(SPELLINGS)[1:]),
    st.sampled_from(["purple", "???", "12 apples"]),
    st.data(),
)
def test_an_unparseable_value_always_raises(records, column, junk, data):
    if column in ("cytogenetics", "months_since_last_hsct"):
        column, junk = "prior_relapses", "many"
    row = data.draw(st.integers(0, len(records) - 1))
    records = records.copy()
    records.loc[row, column] = junk
    with pytest.raises(RecordError) as info:
        ClinicalFeatures().fit(records)
    assert any(p.row == row + 1 and p.column == column for p in info.value.problems)
