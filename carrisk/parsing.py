"""Parse messy clinical spellings into canonical values.

Every parser takes one raw cell and returns its canonical value, ``None`` for a missing cell, or raises
:class:`UnparseableValue` with a message saying what was expected. The schema uses them to report unparseable
cells, the feature builders to encode them; the vocabularies are documented in ``docs/records.md``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

MISSING_SPELLINGS = frozenset({"", "na", "n/a", "nan", "none", "null", "unknown", "not known", "unk", ".", "-"})

BLINA_STATUSES = ("naive", "responder", "nonresponder", "exposed_unknown", "unknown")
BURDEN_LEVELS = ("high", "low_mrd_positive", "low_mrd_unknown", "undetectable", "unknown")
CD19_LEVELS = ("bright", "dim", "partial", "negative")
KMT2A_LEVELS = ("rearranged", "not_rearranged", "not_tested", "unknown")
CAR_PRODUCTS = ("tisagenlecleucel", "nci_cd28", "scri_plat02", "chop_penn", "other")
CNS_LEVELS = ("CNS1", "CNS2", "CNS3")
RELAPSE_PHENOTYPES = ("none", "CD19+", "CD19-", "lineage switch", "unclassified")

HIGH_BURDEN_BLASTS_PCT = 5.0
#: Marrow blast percentages below this are "below MRD detection" (flow MRD sensitivity 0.01 %).
MRD_DETECTION_LIMIT_PCT = 0.01


class UnparseableValue(ValueError):
    """A cell whose spelling no parser recognises; the message says what was expected."""


def is_missing(value: Any) -> bool:
    """Return True when a raw cell means "missing" (blank, NaN, ``NA``, ``unknown``...)."""
    if isinstance(value, str):
        return value.strip().lower() in MISSING_SPELLINGS
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _norm(value: Any) -> str:
    text = str(value).strip().lower()
    text = text.replace("\u2013", "-").replace("\u2212", "-")
    return re.sub(r"\s+", " ", text)


def _lookup(value: Any, table: dict[str, Any], expected: str) -> Any:
    if is_missing(value):
        return None
    key = _norm(value)
    if key in table:
        return table[key]
    raise UnparseableValue(f"cannot read {value!r}; expected {expected}")


_YES = {"yes", "y", "1", "1.0", "true", "t", "positive", "pos"}
_NO = {"no", "n", "0", "0.0", "false", "f", "negative", "neg", "none"}


def parse_yes_no(value: Any) -> bool | None:
    """Parse a yes/no cell (``yes``, ``Y``, ``1``, ``true`` / ``no``, ``N``, ``0``, ``false``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() == "none":
        return False
    if is_missing(value):
        return None
    key = _norm(value)
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise UnparseableValue(f"cannot read {value!r} as yes/no; expected yes, no, Y, N, 1, 0, true or false")


def parse_sex(value: Any) -> str | None:
    """Parse sex to ``M`` or ``F``."""
    table = {"m": "M", "male": "M", "boy": "M", "f": "F", "female": "F", "girl": "F"}
    return _lookup(value, table, "M, F, male or female")


def parse_car_product(value: Any) -> str | None:
    """Parse the CAR construct into one of :data:`CAR_PRODUCTS`."""
    if is_missing(value):
        return None
    key = _norm(value)
    rules = (
        (r"tisagen|kymriah|tisa-?cel|^ctl-?019", "tisagenlecleucel"),
        (r"nci|19-?28z|cd28", "nci_cd28"),
        (r"scri|seattle|plat-?0?2", "scri_plat02"),
        (r"chop|penn|ctl-?119|hucart-?19", "chop_penn"),
        (r"^other", "other"),
    )
    for pattern, product in rules:
        if re.search(pattern, key):
            return product
    raise UnparseableValue(
        f"cannot read CAR product {value!r}; expected tisagenlecleucel (Kymriah, CTL019), NCI (19-28z), "
        "SCRI (PLAT-02), CHOP/Penn (CTL119, huCART19) or other"
    )


_BLINA_RESPONSE = {
    # response (CR/CRi, including MRD-level response)
    **dict.fromkeys(
        [
            "cr",
            "cri",
            "crh",
            "cr/cri",
            "complete remission",
            "complete response",
            "mrd-negative cr",
            "mrd negative cr",
            "mrd neg cr",
            "mrd-neg cr",
            "mrd neg",
            "mrd-neg",
            "mrd negative",
            "mrd-negative",
            "mrd-positive cr",
            "mrd positive cr",
            "mrd response",
            "mrd-level response",
            "responder",
            "response",
        ],
        "responder",
    ),
    # no CR to any course
    **dict.fromkeys(
        [
            "pr",
            "partial response",
            "partial remission",
            "no response",
            "nr",
            "non-responder",
            "nonresponder",
            "non responder",
            "refractory",
            "pd",
            "progressive disease",
            "progression",
            "sd",
            "stable disease",
            "no cr",
            "failure",
            "resistant",
        ],
        "nonresponder",
    ),
    **dict.fromkeys(["not evaluable", "ne", "n/e", "inevaluable", "not assessed"], "exposed_unknown"),
}


def parse_blina_response(value: Any) -> str | None:
    """Parse a blinatumomab response spelling to ``responder``, ``nonresponder`` or ``exposed_unknown``."""
    return _lookup(
        value,
        _BLINA_RESPONSE,
        "a response (CR, CRi, MRD-negative CR, MRD neg), a non-response (PR, NR, no response, refractory, "
        "PD, SD) or 'not evaluable'",
    )


def blina_status(exposed: Any, response: Any) -> str:
    """Combine ``blina_exposed`` and ``blina_response`` into one of :data:`BLINA_STATUSES`.

    A recorded response implies exposure; a blank exposure with a blank response is ``unknown``; a response
    recorded for a patient marked not exposed is a contradiction and raises.
    """
    was_exposed = parse_yes_no(exposed)
    answer = parse_blina_response(response)
    if was_exposed is False:
        if answer is not None:
            raise UnparseableValue(
                f"blina_response is {response!r} but blina_exposed is {exposed!r}; fix one of the two"
            )
        return "naive"
    if answer is None:
        return "exposed_unknown" if was_exposed else "unknown"
    return answer


_MARROW_CODES = {"m1": "low_mrd_unknown", "m2": "high", "m3": "high"}
_MRD_NEGATIVE = {
    "mrd negative",
    "mrd-negative",
    "mrd neg",
    "mrd-neg",
    "undetectable",
    "negative",
    "neg",
    "not detected",
    "mrd undetectable",
    "0 (mrd negative)",
}
_PERCENT = re.compile(r"^(?P<op><=|<|>=|>)?\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*%?$")


def parse_marrow_blasts(value: Any) -> tuple[float | None, str | None]:
    """Parse a marrow-blast cell into ``(percent, burden_level_from_marrow)``.

    Numbers are percentages: ``12``, ``12%`` -> 12 %; ``0.05`` -> 0.05 % (an MRD level, not a fraction).
    ``<0.01`` (below the flow-MRD limit), ``MRD negative`` and ``0`` -> 0 % and ``undetectable``. Marrow codes
    carry no percentage: ``M1`` (< 5 %) -> low burden of unknown MRD status, ``M2``/``M3`` (>= 5 %) -> high. An
    upper bound above the MRD limit up to 5 % (``<1%``, ``<5``) says what M1 says and reads as M1; a lower bound of
    5 % or more (``>25%``, ``>=5``) reads as that percentage (high). A bound the 5 % line lies inside (``<25%``,
    ``>1%``) raises: it does not say whether the burden is high.
    A missing cell gives ``(None, None)``.
    """
    if is_missing(value):
        return None, None
    if isinstance(value, int | float) and not isinstance(value, bool):
        pct, op = float(value), None
    else:
        key = _norm(value)
        if key in _MARROW_CODES:
            return None, _MARROW_CODES[key]
        if key in _MRD_NEGATIVE:
            return 0.0, "undetectable"
        match = _PERCENT.match(key)
        if match is None:
            raise UnparseableValue(
                f"cannot read marrow blasts {value!r}; expected a percentage (12, 12%, 0.05, <0.01), "
                "'MRD negative' or a marrow code M1/M2/M3"
            )
        pct, op = float(match["num"]), match["op"]
    if not 0.0 <= pct <= 100.0:
        raise UnparseableValue(f"marrow blasts {value!r} is outside 0-100 %")
    if op in ("<", "<=") and pct <= MRD_DETECTION_LIMIT_PCT:
        return 0.0, "undetectable"
    if op in ("<", "<=") and pct <= HIGH_BURDEN_BLASTS_PCT:
        # "<1%", "<5%": below a bound the flow-MRD limit lies under, so the blasts may or may not be detectable:
        # what M1 (< 5 %) says, and read as M1 is (low burden, MRD unknown, no percentage to impute from).
        return None, "low_mrd_unknown"
    if op in ("<", "<=") or (op in (">", ">=") and pct < HIGH_BURDEN_BLASTS_PCT):
        # "<25%" or ">1%": the 5 % line between low and high burden lies inside the range
        raise UnparseableValue(
            f"marrow blasts {value!r} does not say whether blasts are below {HIGH_BURDEN_BLASTS_PCT:g} %; give "
            f"the percentage, M1 (< {HIGH_BURDEN_BLASTS_PCT:g} %), M2 or M3"
        )
    if pct == 0.0:
        return 0.0, "undetectable"
    return pct, ("high" if pct >= HIGH_BURDEN_BLASTS_PCT else "low_mrd_positive")


def parse_cns_status(value: Any) -> str | None:
    """Parse CNS status to ``CNS1``, ``CNS2`` or ``CNS3`` (CNS2a/b/c count as CNS2, CNS3a/b/c as CNS3)."""
    if is_missing(value):
        return None
    key = _norm(value).replace(" ", "").replace("-", "")
    match = re.fullmatch(r"(?:cns)?([123])(?:\.0)?[abc]?", key)
    if match is None:
        raise UnparseableValue(f"cannot read CNS status {value!r}; expected CNS1, CNS2 or CNS3 (or 1, 2, 3)")
    return f"CNS{match[1]}"


def disease_burden(marrow_blasts: Any, cns_status: Any, extramedullary: Any) -> str:
    """Combine marrow blasts, CNS status and extramedullary disease into one of :data:`BURDEN_LEVELS`.

    High = >= 5 % marrow blasts (M2/M3) or CNS3 or non-CNS extramedullary disease. Otherwise the marrow decides:
    MRD-positive (< 5 % but detectable), undetectable, low with unknown MRD (``M1``), or ``unknown`` when the
    marrow is missing and nothing else makes the burden high.
    """
    _, marrow_level = parse_marrow_blasts(marrow_blasts)
    if marrow_level == "high" or parse_cns_status(cns_status) == "CNS3" or parse_yes_no(extramedullary):
        return "high"
    return marrow_level or "unknown"


_CD19 = {
    **dict.fromkeys(
        [
            "bright",
            "normal",
            "positive",
            "pos",
            "cd19+",
            "cd19 +",
            "cd19+ bright",
            "cd19 bright",
            "bright/normal",
            "cd19 positive",
            "cd19 pos",
            "homogeneous",
            "uniform",
        ],
        "bright",
    ),
    **dict.fromkeys(["dim", "cd19 dim", "cd19dim", "cd19+ dim", "weak", "low", "dim/weak"], "dim"),
    **dict.fromkeys(
        [
            "partial",
            "partial loss",
            "heterogeneous",
            "cd19-neg subpopulation",
            "cd19 neg subpopulation",
            "cd19-negative subpopulation",
            "cd19- subpopulation",
            "bimodal",
            "partial/heterogeneous",
            "mixed",
        ],
        "partial",
    ),
    **dict.fromkeys(["negative", "neg", "cd19-", "cd19 neg", "cd19-neg", "cd19 negative", "absent"], "negative"),
    **dict.fromkeys(["no disease", "not assessable", "not evaluable", "no blasts"], None),
}


def parse_cd19(value: Any) -> str | None:
    """Parse a flow-cytometry CD19 phrasing to ``bright``, ``dim``, ``partial`` or ``negative``."""
    return _lookup(
        value,
        _CD19,
        "bright/normal/CD19+ bright, dim, partial/partial loss/heterogeneous/CD19-neg subpopulation, negative, "
        "or 'no disease'",
    )


_KMT2A_STATUS = {
    **dict.fromkeys(
        [
            "rearranged",
            "kmt2a-r",
            "kmt2ar",
            "mll-r",
            "mllr",
            "kmt2a rearranged",
            "mll rearranged",
            "positive",
            "pos",
            "yes",
            "y",
            "1",
            "true",
        ],
        "rearranged",
    ),
    **dict.fromkeys(
        [
            "not rearranged",
            "negative",
            "neg",
            "germline",
            "no",
            "n",
            "0",
            "false",
            "wild type",
            "wildtype",
            "kmt2a negative",
            "mll negative",
            "tested negative",
            "not_rearranged",
        ],
        "not_rearranged",
    ),
    **dict.fromkeys(["not tested", "not_tested", "nt", "not done", "untested"], "not_tested"),
}
_KMT2A_CYTOGENETICS = re.compile(
    r"t\(\s*4\s*;\s*11\s*\)|t\(\s*11\s*;\s*19\s*\)|t\(\s*9\s*;\s*11\s*\)|t\(\s*6\s*;\s*11\s*\)|t\(\s*10\s*;\s*11\s*\)"
    r"|t\(\s*11\s*;\s*\d+\s*\)\s*\(\s*q23|\(\s*q\d+\s*;\s*q23\s*\)"
    r"|(?:kmt2a|mll)\s*(?:-|::|/)\s*[a-z]|kmt2a-?r\b|mll-?r\b|11q23\s*(?:rearrang|abnormal|translocation)"
    r"|(?:kmt2a|mll)\s+(?:rearrang|fusion|positive)",
    re.IGNORECASE,
)


def parse_kmt2a(status: Any, cytogenetics: Any = None) -> str:
    """KMT2A rearrangement from ``kmt2a_status``, or from the cytogenetics text when the status is blank.

    Returns ``rearranged``, ``not_rearranged`` (tested negative), ``not_tested`` or ``unknown`` (no status and no
    cytogenetics text). A karyotype without a KMT2A fusion counts as ``not_rearranged``: conventional karyotyping
    sees 11q23 translocations, so a reported karyotype without one is read as a negative test.
    """
    answer = _lookup(status, _KMT2A_STATUS, "rearranged/KMT2A-r/MLL-r, not rearranged/negative, not tested")
    if answer is not None:
        return answer
    if is_missing(cytogenetics):
        return "unknown"
    return "rearranged" if _KMT2A_CYTOGENETICS.search(str(cytogenetics)) else "not_rearranged"


_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,(?P<decimals>\d+)\s*%?$")


def decimal_comma_hint(value: Any) -> str:
    """``" (use a decimal point: 13.3)"`` when ``value`` is text such as ``13,3`` (a decimal comma), else ``""``.

    Three digits after the comma (``1,234``) may as well be a thousands separator; the hint then names both.
    """
    if not isinstance(value, str):
        return ""
    text = value.strip()
    match = _DECIMAL_COMMA.match(text)
    if match is None:
        return ""
    point = text.replace(",", ".", 1)
    if len(match["decimals"]) == 3:
        return f" (write {point} with a decimal point, or {text.replace(',', '', 1)} without a thousands separator)"
    return f" (use a decimal point: {point})"


def number_hint(value: Any) -> str:
    """A hint for a number cell that failed: a decimal comma (:func:`decimal_comma_hint`) or a true/false value."""
    if isinstance(value, bool | np.bool_):
        return " (true/false is not a number)"
    return decimal_comma_hint(value)


def parse_number(
    value: Any,
    *,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    allow_bool: bool = False,
) -> float | None:
    """Parse a finite number (``12``, ``12.5``, ``"3"``), optionally an integer within bounds; missing -> None.

    Infinite values (``inf``, ``-Infinity``, ``1e999``) are never a valid measurement and raise. So is a boolean
    (JSON ``true``, Python ``True``), which would otherwise pass as the number 1, unless ``allow_bool`` (a generic
    table's true/false feature column). Text with a decimal comma (``13,3``) raises with a hint to use a point.
    """
    if isinstance(value, bool | np.bool_):
        if allow_bool:
            return float(value)
        raise UnparseableValue(f"{value!r} is true/false, not a number")
    if is_missing(value):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise UnparseableValue(f"cannot read {value!r} as a number{decimal_comma_hint(value)}") from None
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise UnparseableValue(f"{value!r} is not a finite number")
    if integer and not number.is_integer():
        raise UnparseableValue(f"{value!r} is not a whole number")
    if minimum is not None and number < minimum:
        raise UnparseableValue(f"{value!r} is below the minimum {minimum:g}")
    if maximum is not None and number > maximum:
        raise UnparseableValue(f"{value!r} is above the maximum {maximum:g}")
    return number


def parse_count(value: Any, *, maximum: float | None = None) -> float | None:
    """Parse a count (``prior_hsct_count``, ``prior_relapses``): a whole number >= 0; ``none`` means 0.

    Elsewhere ``none`` is one of the spellings of missing (:data:`MISSING_SPELLINGS`); in a count it says "zero of
    them", so reading it as missing (and imputing the median) would change its meaning.
    """
    if isinstance(value, str) and value.strip().lower() == "none":
        return 0.0
    return parse_number(value, integer=True, minimum=0, maximum=maximum)


_ONE = {"1", "yes", "y", "true"}
_ZERO = {"0", "no", "n", "false"}


def parse_binary(value: Any) -> float | None:
    """Parse a 0/1 outcome cell (``efs_event``, ``day28_cr``, ``death``) to 1.0 or 0.0; missing -> None.

    Accepts the numbers 0 and 1 (``1``, ``1.0``, ``"0"``), ``yes``/``no``, ``y``/``n``, ``true``/``false`` (any
    case) and booleans: the yes/no columns' spellings without ``t``/``f``, ``pos``/``neg``, ``positive``/
    ``negative`` and ``none``, which read as a finding's result there but are ambiguous for an outcome (a
    "positive" relapse assessment is an event; a "positive" remission assessment is not).
    """
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, str):
        key = value.strip().lower()
        if key in _ONE:
            return 1.0
        if key in _ZERO:
            return 0.0
    if is_missing(value):
        return None
    number = parse_number(value)
    if number not in (None, 0.0, 1.0):
        raise UnparseableValue(f"cannot read {value!r} as 0/1; expected 0 or 1 (also no/yes, false/true)")
    return number


def parse_relapse_phenotype(value: Any) -> str | None:
    """Parse the relapse phenotype to ``none``, ``CD19+``, ``CD19-``, ``lineage switch`` or ``unclassified``."""
    table = {
        "none": "none",
        "no relapse": "none",
        "cd19+": "CD19+",
        "cd19 positive": "CD19+",
        "cd19-positive": "CD19+",
        "cd19 pos": "CD19+",
        "cd19-": "CD19-",
        "cd19 negative": "CD19-",
        "cd19-negative": "CD19-",
        "cd19 neg": "CD19-",
        "lineage switch": "lineage switch",
        "lineage-switch": "lineage switch",
        "myeloid switch": "lineage switch",
        "unclassified": "unclassified",
        "other": "unclassified",
    }
    return _lookup(value, table, "none, CD19+, CD19-, lineage switch or unclassified")
