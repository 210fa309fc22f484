"""The patient-record schema: reading record files, validating them, and the survival target.

One row per CAR infusion; the columns are documented in ``docs/records.md``. Validation uses pandera with lazy
evaluation so that one call reports *every* problem (row, patient_id, column, offending value, what was expected),
not only the first.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from carrisk import parsing
from carrisk.target import make_target
from carrisk.units import SIX_MONTHS_DAYS as SIX_MONTHS_DAYS  # re-exported for older imports; home: carrisk.units
from carrisk.units import TWELVE_MONTHS_DAYS as TWELVE_MONTHS_DAYS
from carrisk.units import TWO_YEARS_DAYS as TWO_YEARS_DAYS

ID_COLUMN = "patient_id"
TIME_COLUMN = "efs_days"
EVENT_COLUMN = "efs_event"
MAX_AGE_YEARS = 40.0
#: Plausible upper bounds of the numeric record fields (docs/records.md): beyond any follow-up of CAR T-cell
#: therapy (first infusions 2010) and any transplant history of a patient aged at most 40.
MAX_FOLLOW_UP_DAYS = 10_000.0
MAX_MONTHS_SINCE_HSCT = 12 * MAX_AGE_YEARS
MAX_PRIOR_HSCT = 10
MAX_PRIOR_RELAPSES = 20


def _accepts(parser: Callable[[Any], Any], *, required: bool = False) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if parsing.is_missing(value):
            return not required
        try:
            parser(value)
        except parsing.UnparseableValue:
            return False
        return True

    return check


def _number(**bounds: Any) -> Callable[[Any], Any]:
    return lambda value: parsing.parse_number(value, **bounds)


def _count(maximum: int) -> Callable[[Any], Any]:
    return lambda value: parsing.parse_count(value, maximum=maximum)


def _event(value: Any) -> Any:
    return parsing.parse_binary(value)


@dataclass(frozen=True)
class ColumnRule:
    """How one record column is checked: a parser that accepts the cell, and the words to say when it fails.

    ``numeric`` marks a number column, whose error adds a hint when the cell has a decimal comma (``13,3``).
    """

    parse: Callable[[Any], Any]
    expected: str
    required_value: bool = False
    numeric: bool = False


PREINFUSION_RULES: dict[str, ColumnRule] = {
    "patient_id": ColumnRule(str, "a unique, non-empty identifier", required_value=True),
    "age_years": ColumnRule(
        _number(minimum=0, maximum=MAX_AGE_YEARS), f"age in years between 0 and {MAX_AGE_YEARS:g}", numeric=True
    ),
    "sex": ColumnRule(parsing.parse_sex, "M, F, male or female"),
    "car_product": ColumnRule(
        parsing.parse_car_product, "tisagenlecleucel, NCI (19-28z), SCRI (PLAT-02), CHOP/Penn or other"
    ),
    "blina_exposed": ColumnRule(parsing.parse_yes_no, "yes/no (yes, no, Y, N, 1, 0, true, false)"),
    "blina_response": ColumnRule(
        parsing.parse_blina_response,
        "CR, CRi, MRD neg, PR, NR, no response, refractory, PD, SD, not evaluable",
    ),
    "marrow_blasts_pct": ColumnRule(
        parsing.parse_marrow_blasts,
        "a percentage 0-100 (12, 12%, 0.05, <0.01, <1%), 'MRD negative' or M1/M2/M3",
        numeric=True,
    ),
    "cns_status": ColumnRule(parsing.parse_cns_status, "CNS1, CNS2 or CNS3"),
    "extramedullary_disease": ColumnRule(parsing.parse_yes_no, "yes/no"),
    "cd19_expression": ColumnRule(parsing.parse_cd19, "bright, dim, partial (partial loss, heterogeneous), negative"),
    "kmt2a_status": ColumnRule(
        lambda v: parsing.parse_kmt2a(v, None), "rearranged, not rearranged, not tested, or blank"
    ),
    "cytogenetics": ColumnRule(str, "free text"),
    "prior_hsct_count": ColumnRule(
        _count(MAX_PRIOR_HSCT), f"a whole number of transplants, 0-{MAX_PRIOR_HSCT} (none = 0)", numeric=True
    ),
    "months_since_last_hsct": ColumnRule(
        _number(minimum=0, maximum=MAX_MONTHS_SINCE_HSCT),
        f"months, 0-{MAX_MONTHS_SINCE_HSCT:g}, blank when no transplant",
        numeric=True,
    ),
    "prior_relapses": ColumnRule(
        _count(MAX_PRIOR_RELAPSES), f"a whole number of relapses, 0-{MAX_PRIOR_RELAPSES} (none = 0)", numeric=True
    ),
    "down_syndrome": ColumnRule(parsing.parse_yes_no, "yes/no"),
    "prior_inotuzumab": ColumnRule(parsing.parse_yes_no, "yes/no"),
}

_BINARY_SPELLINGS = " (also no/yes, false/true)"

OUTCOME_RULES: dict[str, ColumnRule] = {
    "efs_days": ColumnRule(
        _number(minimum=0, maximum=MAX_FOLLOW_UP_DAYS),
        f"days, 0-{MAX_FOLLOW_UP_DAYS:,.0f}",
        required_value=True,
        numeric=True,
    ),
    "efs_event": ColumnRule(_event, f"0 (censored) or 1 (event){_BINARY_SPELLINGS}", required_value=True),
    "day28_cr": ColumnRule(_event, f"0 or 1{_BINARY_SPELLINGS}"),
    "relapse_phenotype": ColumnRule(parsing.parse_relapse_phenotype, "none, CD19+, CD19-, lineage switch"),
    "os_days": ColumnRule(
        _number(minimum=0, maximum=MAX_FOLLOW_UP_DAYS), f"days, 0-{MAX_FOLLOW_UP_DAYS:,.0f}", numeric=True
    ),
    "death": ColumnRule(_event, f"0 (alive) or 1 (died){_BINARY_SPELLINGS}"),
}

PREINFUSION_COLUMNS: tuple[str, ...] = tuple(PREINFUSION_RULES)
OUTCOME_COLUMNS: tuple[str, ...] = tuple(OUTCOME_RULES)
RECORD_COLUMNS: tuple[str, ...] = PREINFUSION_COLUMNS + OUTCOME_COLUMNS


@dataclass(frozen=True)
class RecordProblem:
    """One problem found in a record table.

    ``row`` is 1-based: row N is the N-th record (row 1 is the first record under the header; blank rows of a CSV
    file, which are skipped, are not counted). ``line`` is, for records read from a CSV file, the line of the file
    the record starts on (the header is line 1): what a text editor shows, and the row number a spreadsheet shows
    unless a cell above holds a line break. ``None`` for tables that did not come from a CSV file.
    """

    row: int | None
    patient_id: str | None
    column: str | None
    value: Any
    expected: str
    line: int | None = None

    def __str__(self) -> str:
        where = "table" if self.row is None else f"row {self.row}"
        details = [] if self.line is None else [f"file line {self.line}"]
        if self.patient_id is not None:
            details.append(f"patient_id {self.patient_id}")
        if details:
            where += f" ({', '.join(details)})"
        column = f", column {self.column!r}" if self.column else ""
        value = "" if self.row is None else f": got {self.value!r}"
        return f"{where}{column}{value}; expected {self.expected}"


class RecordError(ValueError):
    """Raised when records fail validation; ``problems`` lists every problem found, in row order."""

    def __init__(self, problems: Sequence[RecordProblem], source: str = "records") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems[:200])
        more = f"\n  ... and {len(self.problems) - 200} more" if len(self.problems) > 200 else ""
        super().__init__(f"{len(self.problems)} problem(s) in {source}:\n{lines}{more}")

    def to_frame(self) -> pd.DataFrame:
        """The problems as a DataFrame with columns row, patient_id, column, value, expected, line."""
        return pd.DataFrame(
            [(p.row, p.patient_id, p.column, p.value, p.expected, p.line) for p in self.problems],
            columns=PROBLEM_COLUMNS,
        )


#: The columns of :meth:`RecordError.to_frame` (and of ``predict --skip-invalid``'s rejected-rows file).
PROBLEM_COLUMNS = ["row", "patient_id", "column", "value", "expected", "line"]

#: ``DataFrame.attrs`` key under which :func:`read_records` notes the file line of each record of a CSV file.
FILE_LINES_ATTR = "carrisk_file_lines"


def _note_file_lines(frame: pd.DataFrame, lines: Sequence[int]) -> None:
    """Store the file line of every row of ``frame`` in its attrs, compactly (JSON-safe, cheap to copy).

    Stored as breakpoints ``[position, line]`` where the lines stop following the rows one to one (a skipped
    blank row, a cell with a line break), with the row count, so that :func:`file_lines` can tell a frame with
    rows dropped or added since (whose positions no longer match) and ignore the note.
    """
    breaks: list[list[int]] = []
    for position, line in enumerate(lines):
        if not breaks or line != breaks[-1][1] + position - breaks[-1][0]:
            breaks.append([position, int(line)])
    column = str(frame.columns[0]) if len(frame.columns) else None
    order = _row_order(frame, column)
    frame.attrs[FILE_LINES_ATTR] = {"rows": len(lines), "breaks": breaks, "column": column, "order": order}


def _row_order(frame: pd.DataFrame, column: str | None) -> str | None:
    """A fingerprint of the rows' order: the SHA-256 of one column's cells (a sorted or shuffled copy differs)."""
    if column is None or column not in frame.columns:
        return None
    cells = "\x1f".join("" if pd.isna(v) else str(v) for v in frame[column].tolist())
    return hashlib.sha256(cells.encode("utf-8", "surrogatepass")).hexdigest()


def file_lines(frame: pd.DataFrame) -> list[int] | None:
    """The CSV file line of each row of ``frame`` as :func:`read_records` noted it; None when not known.

    The note holds as long as the rows are the ones read, in their order (index 0..n-1, and the first column's
    cells as read); a frame with rows dropped, added, reordered or reindexed since gets None.
    """
    note = frame.attrs.get(FILE_LINES_ATTR)
    index = frame.index
    if (
        not isinstance(note, dict)
        or note.get("rows") != len(frame)
        or not isinstance(index, pd.RangeIndex)
        or index.start != 0
        or index.step != 1
        or _row_order(frame, note.get("column")) != note.get("order")
    ):
        return None
    lines: list[int] = []
    breaks = note["breaks"] + [[len(frame), 0]]
    for (start, line), (stop, _) in itertools.pairwise(breaks):
        lines.extend(range(line, line + stop - start))
    return lines


def with_file_lines(problems: Sequence[RecordProblem], frame: pd.DataFrame) -> list[RecordProblem]:
    """``problems`` (rows numbered from 1 over ``frame``) with their CSV file line when ``frame`` notes it."""
    lines = file_lines(frame)
    if lines is None:
        return list(problems)
    return [
        p if p.row is None or p.line is not None or not 0 < p.row <= len(lines) else replace(p, line=lines[p.row - 1])
        for p in problems
    ]


#: Longest header line read before deciding a file is not a CSV of records (the record header is ~400 bytes).
MAX_HEADER_BYTES = 65_536


def check_csv_header(path: str | os.PathLike[str]) -> list[str]:
    """Read only the first line of a CSV (at most 64 KiB) and return its column names.

    Catches a junk or binary file, and a file separated by semicolons or tabs, before it is read whole.

    Raises
    ------
    OSError
        If the file cannot be opened, is empty, has no line break within 64 KiB, holds NUL bytes, is not
        UTF-8 text, or its header is one column holding semicolons or tabs (a spreadsheet's semicolon- or
        tab-separated export).
    """
    with open(path, "rb") as handle:
        head = handle.read(MAX_HEADER_BYTES + 1)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and _looks_like_utf16_csv(head):
        raise OSError(f"the file is UTF-16 text (a 'Unicode text' export); {SAVE_AS_CSV}")
    if b"\r" in head and b"\n" not in head:
        head = head.replace(b"\r", b"\n")  # classic Mac line endings: the header is the first line all the same
    line, newline, _ = head.partition(b"\n")
    if not head.strip():
        raise OSError("the file is empty: expected a CSV with a header line")
    if not newline and len(head) > MAX_HEADER_BYTES:
        raise OSError(f"the first line is longer than {MAX_HEADER_BYTES:,} bytes: not a CSV of records")
    if b"\x00" in line:
        raise OSError("a binary file, not a CSV (NUL bytes in the first line)")
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise OSError(f"line 1 (the header) is not UTF-8 text; {SAVE_AS_CSV}") from None
    names = next(csv.reader([text]), [])
    if len(names) == 1:
        for separator, kind in ((";", "semicolon-separated (a European Excel export?)"), ("\t", "tab-separated")):
            if separator in names[0]:
                raise OSError(f"the file looks {kind}; {SAVE_AS_CSV}")
    return names


def _looks_like_utf16_csv(head: bytes) -> bool:
    """Whether bytes starting with a UTF-16 byte-order mark decode to text with a line of separated values."""
    try:
        text = head[: len(head) // 2 * 2].decode("utf-16")
    except UnicodeDecodeError:
        return False
    first = text.splitlines()[0] if text else ""
    return first.isprintable() and any(separator in first for separator in ",;\t")


#: What to do about a file that is not comma-separated UTF-8 text.
SAVE_AS_CSV = "save it as comma-separated CSV (UTF-8)"


def read_records(source: str | os.PathLike[str] | pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Read patient records from a CSV or Parquet path, a DataFrame or a list of dicts.

    CSV cells are read as text, so that identifiers such as ``007`` and spellings such as ``12%`` reach the
    parsers unchanged; blank cells become missing. A CSV file must be comma-separated UTF-8 (a byte-order mark
    is allowed) with one header line of distinct column names; rows whose every cell is blank (a spreadsheet's
    trailing ``,,,,``) are skipped, and the file line of each record is noted for error messages (see
    :class:`RecordProblem`).

    Raises
    ------
    OSError
        If the file cannot be read (missing, unreadable, not CSV/Parquet, not UTF-8, separated by semicolons or
        tabs, a repeated column name, a row with more cells than the header).
    """
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            if path.suffix.lower() in (".parquet", ".pq"):
                frame = pd.read_parquet(path)
            else:
                check_csv_header(path)
                frame = _read_csv(path)
        except (OSError, ValueError, UnicodeDecodeError, csv.Error) as err:
            raise OSError(f"cannot read records from {path}: {err}") from err
        return frame
    return pd.DataFrame(list(source))


def _read_csv(path: Path) -> pd.DataFrame:
    """A comma-separated UTF-8 file as a frame of text cells (blank -> NaN), its file lines noted in attrs."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = err.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)  # counted after it
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise OSError(
            f"line {line} is not UTF-8 text (byte 0x{data[start]:02x}, the line's byte {column}; a "
            f"Windows or Latin-1 export?); {SAVE_AS_CSV}"
        ) from None
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")  # classic Mac (CR-only) line endings
    reader = csv.reader(io.StringIO(text, newline=""))
    names = [name.strip() for name in next(reader, [])]  # " age_years " is age_years (a padded export)
    repeated = sorted({n for n in names if n.strip() and names.count(n) > 1}, key=names.index)
    if repeated:
        where = "; ".join(
            f"{n!r} (columns {', '.join(str(i + 1) for i, m in enumerate(names) if m == n)})" for n in repeated
        )
        raise OSError(f"the header repeats the column name(s) {where}; remove or rename the copies")
    columns = [name if name else f"Unnamed: {i}" for i, name in enumerate(names)]
    width = len(columns)
    rows: list[list[Any]] = []
    lines: list[int] = []
    previous = reader.line_num
    for cells in reader:
        first_line, previous = previous + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # a blank row: nothing in it
        if len(cells) > width:
            if any(cell.strip() for cell in cells[width:]):
                raise OSError(
                    f"line {first_line} has {len(cells)} cells but the header names {width} columns (a value "
                    "holding a comma needs double quotes around it)"
                )
            cells = cells[:width]
        rows.append([cell if cell != "" else np.nan for cell in cells] + [np.nan] * (width - len(cells)))
        lines.append(first_line)
    frame = pd.DataFrame(rows, columns=columns, dtype=object) if rows else pd.DataFrame(columns=columns, dtype=object)
    _note_file_lines(frame, lines)
    return frame


def id_key(value: Any) -> Any:
    """What identifiers are compared by: text without surrounding whitespace (``"EX-07 "`` is ``"EX-07"``)."""
    return value.strip() if isinstance(value, str) else value


def _unique_ids(column: pd.Series) -> pd.Series:
    return ~column.map(id_key).duplicated(keep=False)


def _record_schema(rules: Mapping[str, ColumnRule], id_col: str | None) -> pa.DataFrameSchema:
    columns = {
        name: pa.Column(
            object,
            checks=[
                pa.Check(
                    _accepts(rule.parse, required=rule.required_value),
                    element_wise=True,
                    error=rule.expected,
                    name="parse",
                ),
                *([pa.Check(_unique_ids, name="field_uniqueness", error="field_uniqueness")] if name == id_col else []),
            ],
            nullable=not rule.required_value,
            required=True,
        )
        for name, rule in rules.items()
    }
    return pa.DataFrameSchema(columns, strict=False)


def _passes_rules(frame: pd.DataFrame, rules: Mapping[str, ColumnRule], id_col: str | None) -> bool:
    """Whether the pandera schema of ``rules`` (:func:`_record_schema`) accepts ``frame``, decided without pandera.

    The fast path of :func:`_pandera_problems`: it applies the same rules the same way (every rule column
    present; a missing cell, as ``Series.isna`` sees it, fails only a column that requires a value and skips the
    element check; every other cell must satisfy :func:`_accepts`; ``id_col`` unique) but stops at the first
    failure and builds no report. It only ever says "valid": whenever it is unsure (duplicated column names, a
    parser raising something unexpected) it says False and pandera decides and describes the problems. A test
    compares the two over fuzzed and hypothesis-generated tables.
    """
    if not frame.columns.is_unique or any(name not in frame.columns for name in rules):
        return False
    try:
        for name, rule in rules.items():
            values = frame[name].to_numpy(dtype=object)  # the cells of pandera's as_object frame
            missing = pd.isna(values)  # what Series.isna says of them
            if rule.required_value and missing.any():
                return False
            accepts = _accepts(rule.parse, required=rule.required_value)
            if not all(accepts(value) for value in values[~missing]):
                return False
            if name == id_col and not pd.Series(values).map(id_key).is_unique:
                return False
    except Exception:  # anything unexpected is pandera's to report
        return False
    return True


def _pandera_problems(
    frame: pd.DataFrame, rules: Mapping[str, ColumnRule], id_col: str | None = ID_COLUMN
) -> list[RecordProblem]:
    if _passes_rules(frame, rules, id_col):
        return []
    return _schema_problems(frame, rules, id_col)


def _schema_problems(frame: pd.DataFrame, rules: Mapping[str, ColumnRule], id_col: str | None) -> list[RecordProblem]:
    """Every problem of ``frame`` under ``rules``, found by the pandera schema (lazy: all at once)."""
    schema = _record_schema(rules, id_col)
    as_object = frame.astype({c: object for c in rules if c in frame.columns})
    try:
        schema.validate(as_object, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return []
    ids = frame[id_col] if id_col in frame.columns else None
    problems = []
    for case in cases.itertuples(index=False):
        column = case.column if isinstance(case.column, str) else None
        if case.index is None or (isinstance(case.index, float) and np.isnan(case.index)):
            if case.check == "column_in_dataframe":
                expected = "this required column (see `carrisk records-help`)" + did_you_mean(
                    str(case.failure_case), [c for c in frame.columns if c not in rules]
                )
                problems.append(RecordProblem(None, None, case.failure_case, None, expected))
            elif column in rules:
                problems.append(RecordProblem(None, None, column, case.failure_case, str(case.check)))
            continue
        position = int(case.index)
        rule = rules.get(column) if column is not None else None
        if case.check == "field_uniqueness":
            expected = f"a {column} that appears only once (this one is duplicated)"
            spellings = sorted({repr(v) for v in frame[column] if id_key(v) == id_key(case.failure_case)})
            if len(spellings) > 1:
                expected = (
                    f"a {column} that appears only once (this one is duplicated: {' and '.join(spellings)} differ "
                    "only by surrounding spaces)"
                )
        elif case.check == "not_nullable" or (rule and rule.required_value and parsing.is_missing(case.failure_case)):
            expected = f"a value ({rule.expected if rule else 'required'}); it must not be missing"
        else:
            expected = rule.expected if rule else str(case.check)
            if rule is not None and rule.numeric:
                expected += parsing.number_hint(case.failure_case)
        patient = None if ids is None or pd.isna(ids.iloc[position]) else str(ids.iloc[position])
        problems.append(RecordProblem(position + 1, patient, column, case.failure_case, expected))
    return problems


def did_you_mean(name: str, candidates: Iterable[Any]) -> str:
    """``"; did you mean 'x'? (rename it)"`` when a column of ``candidates`` is a close spelling of ``name``."""
    names = [str(c) for c in candidates]
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in names], n=1, cutoff=0.75)
    if not close:
        return ""
    original = next(c for c in names if c.lower() == close[0])
    return f"; did you mean the column {original!r} (rename it to {name!r})?"


def _cross_column_problems(frame: pd.DataFrame) -> list[RecordProblem]:
    problems = []
    ids = frame[ID_COLUMN] if ID_COLUMN in frame.columns else pd.Series([None] * len(frame))
    if {"blina_exposed", "blina_response"} <= set(frame.columns):
        for position, (exposed, response) in enumerate(zip(frame["blina_exposed"], frame["blina_response"])):
            try:
                contradiction = parsing.parse_yes_no(exposed) is False and parsing.parse_blina_response(response)
            except parsing.UnparseableValue:
                continue  # already reported per column
            if contradiction:
                problems.append(
                    RecordProblem(
                        position + 1,
                        _id(ids, position),
                        "blina_response",
                        response,
                        "blank when blina_exposed is no (a response needs an exposure); fix one of the two",
                    )
                )
    if {"prior_hsct_count", "months_since_last_hsct"} <= set(frame.columns):
        for position, (count, months) in enumerate(zip(frame["prior_hsct_count"], frame["months_since_last_hsct"])):
            try:
                n_hsct = parsing.parse_count(count)
                gap = parsing.parse_number(months)
            except parsing.UnparseableValue:
                continue
            if n_hsct == 0 and gap is not None:
                problems.append(
                    RecordProblem(
                        position + 1,
                        _id(ids, position),
                        "months_since_last_hsct",
                        months,
                        "blank when prior_hsct_count is 0",
                    )
                )
    return problems


def _id(ids: pd.Series, position: int) -> str | None:
    value = ids.iloc[position]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def validate_records(records: pd.DataFrame, *, outcomes: str = "optional", source: str = "records") -> pd.DataFrame:
    """Check records against the carrisk schema and report every problem at once.

    Parameters
    ----------
    records : DataFrame
        Raw records (as read by :func:`read_records`).
    outcomes : {"required", "efs", "optional", "ignore"}
        ``required`` for training (outcome columns must exist and be valid), ``efs`` for external validation
        and updating (``efs_days`` and ``efs_event`` must exist; the other outcome columns are checked when
        present), ``optional`` (checked when present) for prediction, ``ignore`` to skip them.
    source : str
        Name of the input, used in the error message.

    Returns
    -------
    DataFrame
        The records, unchanged.

    Raises
    ------
    RecordError
        Listing every problem: missing columns, duplicated ``patient_id``, unparseable or out-of-range values,
        negative times, events other than 0/1, contradictions between columns.
    """
    if outcomes not in ("required", "efs", "optional", "ignore"):
        raise ValueError(f"outcomes must be 'required', 'efs', 'optional' or 'ignore', got {outcomes!r}")
    frame = records.reset_index(drop=True)
    rules = dict(PREINFUSION_RULES)
    if outcomes == "required":
        rules.update(OUTCOME_RULES)
    elif outcomes in ("efs", "optional"):
        needed = ("efs_days", "efs_event") if outcomes == "efs" else ()
        rules.update({c: r for c, r in OUTCOME_RULES.items() if c in frame.columns or c in needed})
    if frame.empty:
        raise RecordError([RecordProblem(None, None, None, None, "at least one record")], source)
    problems = _repeated_columns(frame) or _pandera_problems(frame, rules) + _cross_column_problems(frame)
    if problems:
        problems.sort(
            key=lambda p: (
                p.row is not None,
                p.row or 0,
                RECORD_COLUMNS.index(p.column) if p.column in RECORD_COLUMNS else 99,
            )
        )
        raise RecordError(with_file_lines(problems, records), source)
    return records


def _repeated_columns(frame: pd.DataFrame) -> list[RecordProblem]:
    """A problem for each column name the table has more than once (which of the copies is meant is unknown)."""
    names = [str(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1}, key=names.index)
    return [
        RecordProblem(
            None, None, n, None, f"one column of that name (the table has {names.count(n)}); remove the copies"
        )
        for n in repeated
    ]


def validate_survival_table(
    table: pd.DataFrame, time_col: str, event_col: str, *, source: str = "table", id_col: str | None = None
) -> pd.DataFrame:
    """Check a generic survival table: time column numeric and >= 0, event column 0/1, optional unique id.

    Raises
    ------
    RecordError
        Listing every problem at once.
    """
    rules = {
        time_col: ColumnRule(_number(minimum=0), "a finite time >= 0", required_value=True, numeric=True),
        event_col: ColumnRule(_event, "0 (censored) or 1 (event)", required_value=True),
    }
    frame = table.reset_index(drop=True)
    if frame.empty:
        raise RecordError([RecordProblem(None, None, None, None, "at least one row")], source)
    if id_col is not None:
        rules = {id_col: ColumnRule(str, "a unique identifier", required_value=True), **rules}
    problems = _repeated_columns(frame) or _pandera_problems(frame, rules, id_col)
    if problems:
        raise RecordError(with_file_lines(problems, table), source)
    return table


def validate_feature_table(
    table: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Mapping[str, Sequence[str]],
    *,
    id_col: str | None = None,
    source: str = "table",
) -> pd.DataFrame:
    """Check a generic-mode table before prediction: its feature columns, as the model was trained on them.

    Parameters
    ----------
    numeric : sequence of str
        Columns that must hold finite numbers (or be missing).
    categorical : mapping column -> levels
        Columns whose values must be among the training levels (or be missing).
    id_col : str, optional
        An identifier column that must be unique and never missing.

    Raises
    ------
    RecordError
        Listing every problem at once: missing columns, non-numbers, infinite numbers, unseen levels.
    """
    frame = table.reset_index(drop=True)
    if frame.empty:
        raise RecordError([RecordProblem(None, None, None, None, "at least one row")], source)
    rules: dict[str, ColumnRule] = {}
    if id_col is not None:
        rules[id_col] = ColumnRule(str, "a unique identifier", required_value=True)
    rules.update({c: ColumnRule(_number(allow_bool=True), "a finite number, or blank", numeric=True) for c in numeric})
    for column, levels in categorical.items():
        known = [str(level) for level in levels if level != "unknown"]
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        rules[column] = ColumnRule(_level_of(known), f"one of the training levels ({shown})")
    problems = _repeated_columns(frame) or _pandera_problems(frame, rules, id_col)
    if problems:
        raise RecordError(with_file_lines(problems, table), source)
    return table


def _level_of(levels: Sequence[str]) -> Callable[[Any], Any]:
    allowed = set(levels)

    def parse(value: Any) -> Any:
        text = str(value).strip()
        if text not in allowed:
            raise parsing.UnparseableValue(f"{value!r} is not a level seen in training")
        return text

    return parse


def survival_target(records: pd.DataFrame, time_col: str = TIME_COLUMN, event_col: str = EVENT_COLUMN) -> np.ndarray:
    """The scikit-survival structured target (``event`` bool, ``time`` float) from two record columns.

    Raises
    ------
    RecordError
        If a time is missing or negative, or an event is not 0/1 (every such row is listed).
    KeyError
        If a column is absent.
    """
    for column in (time_col, event_col):
        if column not in records.columns:
            raise KeyError(f"survival column {column!r} not found; available: {list(records.columns)}")
    validate_survival_table(records[[time_col, event_col]], time_col, event_col)
    time = np.array([parsing.parse_number(v) for v in records[time_col]], dtype=float)
    event = np.array([parsing.parse_binary(v) for v in records[event_col]], dtype=float).astype(bool)
    return make_target(event, time)
