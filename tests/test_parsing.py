"""Tables of raw spelling -> canonical value for every parser, and the errors for unknown spellings."""

import math

import pytest

from carrisk import parsing
from carrisk.parsing import UnparseableValue


@pytest.mark.parametrize(
    ("exposed", "response", "status"),
    [
        ("no", "", "naive"),
        ("N", None, "naive"),
        ("0", float("nan"), "naive"),
        ("yes", "CR", "responder"),
        ("yes", "CRi", "responder"),
        ("Y", "MRD-negative CR", "responder"),
        ("1", "MRD neg", "responder"),
        ("true", "mrd-positive cr", "responder"),
        ("yes", "PR", "nonresponder"),
        ("yes", "no response", "nonresponder"),
        ("yes", "NR", "nonresponder"),
        ("yes", "refractory", "nonresponder"),
        ("yes", "PD", "nonresponder"),
        ("yes", "SD", "nonresponder"),
        ("yes", "not evaluable", "exposed_unknown"),
        ("yes", "", "exposed_unknown"),
        ("", "CR", "responder"),
        ("", "", "unknown"),
    ],
)
def test_blinatumomab_status_spellings(exposed, response, status):
    assert parsing.blina_status(exposed, response) == status


@pytest.mark.parametrize(("exposed", "response"), [("no", "CR"), ("maybe", ""), ("yes", "partially")])
def test_blinatumomab_contradiction_or_unknown_spelling_raises(exposed, response):
    with pytest.raises(UnparseableValue):
        parsing.blina_status(exposed, response)


@pytest.mark.parametrize(
    ("raw", "pct", "level"),
    [
        ("12", 12.0, "high"),
        ("12%", 12.0, "high"),
        (" 12 % ", 12.0, "high"),
        (5, 5.0, "high"),
        ("4.99", 4.99, "low_mrd_positive"),
        ("0.05", 0.05, "low_mrd_positive"),
        ("<0.01", 0.0, "undetectable"),
        ("< 0.01%", 0.0, "undetectable"),
        ("<1%", None, "low_mrd_unknown"),  # below a bound above the MRD limit: what M1 says, read as M1
        ("<5", None, "low_mrd_unknown"),
        (">25%", 25.0, "high"),
        ("MRD negative", 0.0, "undetectable"),
        ("MRD neg", 0.0, "undetectable"),
        ("0", 0.0, "undetectable"),
        ("M1", None, "low_mrd_unknown"),
        ("M2", None, "high"),
        ("m3", None, "high"),
        ("", None, None),
    ],
)
def test_marrow_blast_spellings(raw, pct, level):
    parsed_pct, parsed_level = parsing.parse_marrow_blasts(raw)
    assert parsed_level == level
    assert parsed_pct == pytest.approx(pct) if pct is not None else parsed_pct is None


@pytest.mark.parametrize("raw", ["150", "-3", "lots", "M4", "12 blasts", "<25%", ">1%", True])
def test_marrow_blasts_unparseable_or_out_of_range(raw):
    with pytest.raises(UnparseableValue):
        parsing.parse_marrow_blasts(raw)


@pytest.mark.parametrize(
    ("blasts", "cns", "emd", "burden"),
    [
        ("12%", "CNS1", "no", "high"),
        ("0.05", "CNS1", "no", "low_mrd_positive"),
        ("0.05", "CNS3", "no", "high"),
        ("MRD neg", "CNS1", "yes", "high"),
        ("MRD neg", "CNS2", "no", "undetectable"),
        ("M1", "1", "no", "low_mrd_unknown"),
        ("", "CNS1", "no", "unknown"),
        ("", "CNS-3", "", "high"),
    ],
)
def test_disease_burden_definition(blasts, cns, emd, burden):
    assert parsing.disease_burden(blasts, cns, emd) == burden


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("bright", "bright"),
        ("normal", "bright"),
        ("CD19+ bright", "bright"),
        ("CD19+", "bright"),
        ("dim", "dim"),
        ("CD19 dim", "dim"),
        ("partial", "partial"),
        ("partial loss", "partial"),
        ("heterogeneous", "partial"),
        ("CD19-neg subpopulation", "partial"),
        ("negative", "negative"),
        ("CD19-", "negative"),
        ("no disease", None),
        ("", None),
    ],
)
def test_cd19_spellings(raw, level):
    assert parsing.parse_cd19(raw) == level


@pytest.mark.parametrize(
    ("status", "cytogenetics", "answer"),
    [
        ("rearranged", "", "rearranged"),
        ("MLL-r", None, "rearranged"),
        ("not rearranged", "t(4;11)(q21;q23)", "not_rearranged"),
        ("negative", "", "not_rearranged"),
        ("not tested", "", "not_tested"),
        ("Not Tested", "46,XX", "not_tested"),
        ("", "t(4;11)(q21;q23)", "rearranged"),
        ("", "KMT2A-AFF1", "rearranged"),
        ("", "KMT2A::MLLT1", "rearranged"),
        ("", "MLL-r", "rearranged"),
        ("", "11q23 rearranged", "rearranged"),
        ("", "t(11;19)(q23;p13.3)", "rearranged"),
        ("", "t(9;11)(p22;q23)", "rearranged"),
        ("", "46,XY", "not_rearranged"),
        ("", "ETV6::RUNX1", "not_rearranged"),
        ("", "t(9;22)(q34;q11.2) BCR::ABL1", "not_rearranged"),
        ("", "", "unknown"),
        (None, None, "unknown"),
    ],
)
def test_kmt2a_from_status_or_cytogenetics(status, cytogenetics, answer):
    assert parsing.parse_kmt2a(status, cytogenetics) == answer


def test_kmt2a_tested_negative_and_not_tested_are_distinct():
    assert parsing.parse_kmt2a("negative") != parsing.parse_kmt2a("not tested")


@pytest.mark.parametrize(
    ("raw", "product"),
    [
        ("tisagenlecleucel", "tisagenlecleucel"),
        ("Kymriah", "tisagenlecleucel"),
        ("tisa-cel", "tisagenlecleucel"),
        ("CTL019", "tisagenlecleucel"),
        ("NCI CD19-28z", "nci_cd28"),
        ("NCI", "nci_cd28"),
        ("SCRI PLAT-02", "scri_plat02"),
        ("Seattle", "scri_plat02"),
        ("CHOP/Penn", "chop_penn"),
        ("CTL119", "chop_penn"),
        ("huCART19", "chop_penn"),
    ],
)
def test_car_product_spellings(raw, product):
    assert parsing.parse_car_product(raw) == product


@pytest.mark.parametrize(
    ("raw", "answer"),
    [("yes", True), ("Y", True), ("1", True), ("no", False), ("0", False), ("false", False), ("", None)],
)
def test_yes_no(raw, answer):
    assert parsing.parse_yes_no(raw) is answer


@pytest.mark.parametrize(("raw", "cns"), [("CNS1", "CNS1"), ("2", "CNS2"), ("CNS-3", "CNS3"), ("CNS 2b", "CNS2")])
def test_cns_status(raw, cns):
    assert parsing.parse_cns_status(raw) == cns


def test_numbers_parse_and_bounds():
    assert parsing.parse_number("12.5") == 12.5
    assert parsing.parse_number("") is None
    assert math.isclose(parsing.parse_number(3), 3.0)
    with pytest.raises(UnparseableValue, match="whole number"):
        parsing.parse_number("1.5", integer=True)
    with pytest.raises(UnparseableValue, match="below"):
        parsing.parse_number("-1", minimum=0)
    with pytest.raises(UnparseableValue):
        parsing.parse_number("twelve")


@pytest.mark.parametrize(("raw", "count"), [("none", 0.0), (" None ", 0.0), ("0", 0.0), ("2", 2.0), ("", None)])
def test_none_in_a_count_means_zero(raw, count):
    # elsewhere "none" is a spelling of missing; a count of "none" is zero, not a value to impute
    assert parsing.parse_count(raw) == count
    assert parsing.is_missing("none")


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_number(value):
    with pytest.raises(UnparseableValue, match="true/false, not a number"):
        parsing.parse_number(value)
    with pytest.raises(UnparseableValue):
        parsing.parse_count(value)
    assert parsing.parse_number(value, allow_bool=True) == float(value)  # a generic table's true/false feature


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        ("13,3", " (use a decimal point: 13.3)"),
        (" 0,05% ", " (use a decimal point: 0.05%)"),
        ("1,234", " (write 1.234 with a decimal point, or 1234 without a thousands separator)"),
        ("13.3", ""),
        ("46,XY", ""),
        (13.3, ""),
    ],
)
def test_decimal_comma_hint(raw, hint):
    assert parsing.decimal_comma_hint(raw) == hint


def test_a_decimal_comma_number_fails_with_the_hint():
    with pytest.raises(UnparseableValue, match=r"use a decimal point: 13\.3"):
        parsing.parse_number("13,3")


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", 1.0),
        ("0", 0.0),
        ("1.0", 1.0),
        (1, 1.0),
        (0.0, 0.0),
        ("Yes", 1.0),
        ("no", 0.0),
        ("Y", 1.0),
        ("n", 0.0),
        ("TRUE", 1.0),
        ("false", 0.0),
        (True, 1.0),
        (False, 0.0),
        ("", None),
        (None, None),
    ],
)
def test_zero_one_outcome_spellings(raw, value):
    assert parsing.parse_binary(raw) == value


@pytest.mark.parametrize("raw", ["2", "0.5", "maybe", "positive"])
def test_zero_one_outcome_rejects_other_values(raw):
    with pytest.raises(UnparseableValue):
        parsing.parse_binary(raw)
