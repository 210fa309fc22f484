"""The fast validity check of records (``schema._passes_rules``) agrees with the pandera schema it stands in for."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.fuzz_records import fuzz_batch
from carrisk import schema
from carrisk.schema import ID_COLUMN, OUTCOME_RULES, PREINFUSION_RULES, ColumnRule, read_records
from carrisk.simulate import simulate_cohort

RULE_SETS = {
    "prediction": dict(PREINFUSION_RULES),
    "training": {**PREINFUSION_RULES, **OUTCOME_RULES},
}


def _agree(frame: pd.DataFrame, rules: dict[str, ColumnRule], id_col: str | None = ID_COLUMN) -> bool:
    """Assert the fast path says "valid" exactly when pandera finds no problem; return that verdict."""
    slow = schema._schema_problems(frame, rules, id_col)
    fast = schema._passes_rules(frame, rules, id_col)
    assert fast == (not slow), f"fast path says {fast}, pandera found {[str(p) for p in slow][:3]}"
    return fast


@pytest.mark.parametrize("rate", [0.0, 0.03, 0.5])
def test_fast_path_agrees_with_pandera_on_the_fuzz_corpus(rate: float) -> None:
    # as the fuzz benchmark builds it: simulated records as text, cells mutated at random; each row alone (a
    # one-patient request) and the whole table (duplicated identifiers included)
    rng = np.random.default_rng(11)
    records = simulate_cohort(n=24, seed=5).records
    table = fuzz_batch(rng, records, rate).replace("", np.nan)
    for rules in RULE_SETS.values():
        verdicts = [_agree(table.iloc[[i]].reset_index(drop=True), rules) for i in range(len(table))]
        _agree(table, rules)
        if rate == 0.0:
            assert all(verdicts)
        if rate == 0.5:
            assert not any(verdicts)
    if rate == 0.03:
        assert 0 < sum(verdicts) < len(verdicts)  # both answers occur


def test_fast_path_agrees_on_typed_records_and_table_problems(example_records: pd.DataFrame) -> None:
    typed = simulate_cohort(n=30, seed=2).records  # numbers as numbers, missing as NaN
    for rules in RULE_SETS.values():
        assert _agree(typed, rules)
        assert _agree(example_records.drop(columns=list(OUTCOME_RULES)), RULE_SETS["prediction"])
        assert not _agree(typed.drop(columns=["cns_status"]), rules)  # a missing column
        duplicated = typed.copy()
        duplicated.loc[3, ID_COLUMN] = duplicated.loc[4, ID_COLUMN]
        assert not _agree(duplicated, rules)
        no_id = typed.copy()
        no_id.loc[0, ID_COLUMN] = None
        assert not _agree(no_id, rules)
    for dtypes in (typed.convert_dtypes(), typed.astype({"sex": "category", "cns_status": "category"})):
        assert _agree(dtypes, RULE_SETS["training"])  # nullable and categorical columns read like pandera's
        dtypes.loc[1, "age_years"] = 99
        assert not _agree(dtypes, RULE_SETS["training"])
    twice = pd.concat([typed, typed[["sex"]]], axis=1)  # two columns named "sex": left to pandera
    assert not schema._passes_rules(twice, RULE_SETS["prediction"], ID_COLUMN)


_CELLS = (
    st.none()
    | st.just(float("nan"))
    | st.booleans()
    | st.integers(-3, 120)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(
        [
            "",
            " ",
            "NA",
            "12%",
            "M3",
            "<0.01",
            "MRD neg",
            "yes",
            "N",
            "CNS2",
            "dim",
            "partial loss",
            "NR",
            "CR",
            "tisagenlecleucel",
            "rearranged",
            "not tested",
            "1",
            "0",
            "1.0",
            "2",
            "CD19-",
            "lineage switch",
            "41",
        ]
    )
    | st.text(max_size=6)
)


@st.composite
def _tables(draw: st.DrawFn) -> pd.DataFrame:
    base = read_records(schema.__file__.replace("schema.py", "data/example_patients.csv"))
    rows = base.sample(draw(st.integers(1, 3)), random_state=draw(st.integers(0, 10))).reset_index(drop=True)
    table = rows.astype(object).where(rows.notna(), None)
    for _ in range(draw(st.integers(0, 4))):
        column = draw(st.sampled_from(list(table.columns)))
        table.at[draw(st.integers(0, len(table) - 1)), column] = draw(_CELLS)
    if draw(st.integers(0, 9)) == 0:
        table = table.drop(columns=[draw(st.sampled_from(list(table.columns)))])
    return table


@settings(max_examples=50, deadline=None)
@given(table=_tables(), rule_set=st.sampled_from(sorted(RULE_SETS)))
def test_fast_path_agrees_with_pandera_on_generated_tables(table: pd.DataFrame, rule_set: str) -> None:
    _agree(table, RULE_SETS[rule_set])


@settings(max_examples=40, deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.one_of(_CELLS, st.sampled_from(["3.5", "-2", "1e3", "inf"])), st.one_of(_CELLS, st.just("b"))),
        min_size=1,
        max_size=3,
    ),
    ids=st.lists(st.sampled_from(["a", "b", None]), min_size=3, max_size=3),
)
def test_fast_path_agrees_with_pandera_on_generic_feature_tables(cells: list[tuple[Any, Any]], ids: list[Any]) -> None:
    rules = {
        "id": ColumnRule(str, "a unique identifier", required_value=True),
        "dose": ColumnRule(lambda v: schema.parsing.parse_number(v), "a finite number, or blank"),
        "arm": ColumnRule(schema._level_of(["a", "b"]), "one of the training levels (a, b)"),
    }
    table = pd.DataFrame({"id": ids[: len(cells)], "dose": [c[0] for c in cells], "arm": [c[1] for c in cells]})
    _agree(table, rules, "id")
