"""Record files as spreadsheets export them, and cells whose meaning must not change on the way in.

Each test builds its file in code: semicolon- and tab-separated exports, Windows-1252 bytes, a repeated column,
blank rows, identifiers with stray spaces, ``none`` counts, JSON booleans, decimal commas and yes/no outcomes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from carrisk import parsing
from carrisk.cli import app
from carrisk.competing.outcomes import derive_first_event
from carrisk.features import ClinicalFeatures
from carrisk.schema import RecordError, read_records, survival_target, validate_records

EXAMPLE = Path(__file__).resolve().parents[1] / "carrisk" / "data" / "example_patients.csv"


def _lines() -> list[str]:
    return EXAMPLE.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def _validate_cli(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("separator", "words"), [(";", "semicolon-separated (a European Excel export?)"), ("\t", "tab-separated")]
)
def test_a_semicolon_or_tab_separated_export_is_one_clear_error(tmp_path, separator, words):
    frame = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    path = tmp_path / "records.csv"
    frame.to_csv(path, sep=separator, index=False)
    code, output = _validate_cli(path)
    assert code == 2
    assert output == (
        f"carrisk: error: cannot read records from {path}: the file looks {words}; save it as comma-separated CSV "
        "(UTF-8)\n"
    )


def test_a_windows_1252_byte_in_a_data_row_names_its_line(tmp_path):
    lines = _lines()
    lines[3] = lines[3].replace("EX-03", "Müller-03", 1)
    path = _write(tmp_path / "latin.csv", lines, encoding="cp1252")
    message = r"line 4 is not UTF-8 text \(byte 0xfc, .*save it as comma-separated CSV \(UTF-8\)"
    with pytest.raises(OSError, match=message):
        read_records(path)
    code, output = _validate_cli(path)
    assert code == 2 and output.count("\n") == 1 and "codec" not in output


def test_a_repeated_column_name_is_an_error_naming_it(tmp_path):
    lines = _lines()
    lines = [lines[0] + ",age_years"] + [line + ",12" for line in lines[1:]]
    path = _write(tmp_path / "twice.csv", lines)
    with pytest.raises(OSError, match=r"repeats the column name\(s\) 'age_years' \(columns 2, 24\)"):
        read_records(path)
    assert _validate_cli(path)[0] == 2
    # a table built in Python with two columns of one name: a table-level problem, not a silent pick
    frame = read_records(EXAMPLE)
    twice = pd.concat([frame, frame[["sex"]]], axis=1)
    with pytest.raises(RecordError) as err:
        validate_records(twice)
    assert [(p.row, p.column) for p in err.value.problems] == [(None, "sex")]
    assert "one column of that name (the table has 2)" in str(err.value)


def test_column_names_padded_with_spaces_are_read_as_the_names(tmp_path):
    lines = _lines()
    padded = _write(tmp_path / "padded.csv", [",".join(f" {name} " for name in lines[0].split(",")), *lines[1:]])
    pd.testing.assert_frame_equal(read_records(padded), read_records(EXAMPLE))
    both = _write(tmp_path / "both.csv", [lines[0] + ",age_years ", *(line + ",12" for line in lines[1:])])
    with pytest.raises(OSError, match=r"repeats the column name\(s\) 'age_years' \(columns 2, 24\)"):
        read_records(both)


def test_blank_rows_are_skipped_and_messages_name_the_file_line(tmp_path):
    lines = _lines()
    blank = "," * (lines[0].count(","))
    bad = lines[3].replace("male", "robot", 1)  # EX-03: an invalid sex
    assert bad != lines[3]
    # line 1 header, 2 EX-01, 3 empty, 4 ",,,,", 5 EX-02, 6 EX-03 (bad), ..., then Excel's trailing blank rows
    path = _write(tmp_path / "blank.csv", [lines[0], lines[1], "", blank, lines[2], bad, *lines[4:], blank, blank])
    frame = read_records(path)
    assert len(frame) == len(lines) - 1 and frame["patient_id"].notna().all()
    with pytest.raises(RecordError) as err:
        validate_records(frame)
    (problem,) = err.value.problems
    assert (problem.row, problem.line, problem.patient_id, problem.column) == (3, 6, "EX-03", "sex")
    assert str(problem).startswith("row 3 (file line 6, patient_id EX-03), column 'sex': got 'robot'")
    assert err.value.to_frame()["line"].tolist() == [6]


def test_a_line_break_inside_a_cell_keeps_the_file_lines_right(tmp_path):
    lines = _lines()
    cells = lines[1].split(",")
    cells[11] = '"46,XY\nsecond line"'  # cytogenetics over two lines (the example quotes "46,XY")
    first = ",".join([*cells[:11], cells[11], *cells[13:]])
    bad = lines[2].replace("16.2", "99", 1)
    path = _write(tmp_path / "multi.csv", [lines[0], first, bad, *lines[3:]])
    with pytest.raises(RecordError) as err:
        validate_records(read_records(path))
    (problem,) = err.value.problems
    assert (problem.row, problem.line, problem.column) == (2, 4, "age_years")


def test_predict_skip_invalid_lists_the_file_line_of_each_rejected_row(tmp_path):
    lines = _lines()
    path = _write(tmp_path / "p.csv", [lines[0], "", lines[1], lines[2].replace(",F,", ",robot,", 1), *lines[3:]])
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["predict", str(path), "--skip-invalid", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rejected = pd.read_csv(tmp_path / "out.rejected.csv")
    assert rejected[["row", "line", "patient_id", "column"]].values.tolist() == [[2, 4, "EX-02", "sex"]]
    assert len(pd.read_csv(out)) == len(lines) - 2


def test_patient_ids_differing_only_by_surrounding_spaces_are_duplicates():
    frame = read_records(EXAMPLE)
    frame.loc[6, "patient_id"] = "EX-01 "
    with pytest.raises(RecordError) as err:
        validate_records(frame)
    assert [(p.row, p.column) for p in err.value.problems] == [(1, "patient_id"), (7, "patient_id")]
    assert "'EX-01 ' and 'EX-01' differ only by surrounding spaces" in str(err.value)


@pytest.mark.parametrize("column", ["prior_hsct_count", "prior_relapses"])
def test_none_in_a_count_column_means_zero_not_missing(column):
    frame = read_records(EXAMPLE)
    frame.loc[0, column] = "0"  # EX-01 has no transplant (months_since_last_hsct blank)
    spelled = frame.copy()
    spelled.loc[0, column] = "none"
    validate_records(spelled)
    builder = ClinicalFeatures().set_output(transform="pandas").fit(frame)
    pd.testing.assert_frame_equal(builder.transform(spelled), builder.transform(frame))
    assert parsing.parse_count("None") == 0.0 and parsing.parse_count("") is None


@pytest.mark.parametrize("column", ["age_years", "prior_hsct_count", "prior_relapses", "months_since_last_hsct"])
def test_true_false_in_a_number_field_is_rejected(column):
    records = read_records(EXAMPLE).astype(object)
    records.loc[0, column] = True
    with pytest.raises(RecordError) as err:
        validate_records(pd.DataFrame(records.to_dict("records")))  # as the HTTP API builds it from JSON
    (problem,) = err.value.problems
    assert (problem.row, problem.column, problem.value) == (1, column, True)
    assert problem.expected.endswith("(true/false is not a number)")


def test_a_decimal_comma_gets_a_hint():
    frame = read_records(EXAMPLE)
    frame.loc[0, "age_years"] = "13,3"
    frame.loc[1, "efs_days"] = "1,234"
    with pytest.raises(RecordError) as err:
        validate_records(frame)
    expected = [p.expected for p in err.value.problems]
    assert expected == [
        "age in years between 0 and 40 (use a decimal point: 13.3)",
        "days, 0-10,000 (write 1.234 with a decimal point, or 1234 without a thousands separator)",
    ]


def test_yes_no_and_true_false_are_accepted_in_the_0_1_outcome_columns():
    frame = read_records(EXAMPLE)
    words = frame.copy()
    for column in ("efs_event", "day28_cr", "death"):
        words[column] = frame[column].map({"1": "Yes", "0": "no"}, na_action="ignore")
    words.loc[0, "efs_event"] = "FALSE" if frame.loc[0, "efs_event"] == "0" else "TRUE"
    validate_records(words, outcomes="required")
    np.testing.assert_array_equal(survival_target(words), survival_target(frame))
    pd.testing.assert_frame_equal(derive_first_event(words), derive_first_event(frame))
    words.loc[1, "efs_event"] = "maybe"
    with pytest.raises(RecordError, match=r"0 \(censored\) or 1 \(event\) \(also no/yes, false/true\)"):
        validate_records(words, outcomes="required")


def test_an_upper_bound_of_marrow_blasts_below_5_percent_reads_as_m1():
    # "<5" says what M1 says (< 5 %, MRD unknown); it is not an MRD-positive 2.5 %
    assert parsing.parse_marrow_blasts("<5") == parsing.parse_marrow_blasts("M1") == (None, "low_mrd_unknown")
    assert parsing.disease_burden("<1%", "CNS1", "no") == "low_mrd_unknown"
    frame = read_records(EXAMPLE).head(3).copy()
    frame["marrow_blasts_pct"] = ["<5", "M1", "<25%"]
    with pytest.raises(RecordError) as err:
        validate_records(frame)
    assert [(p.row, p.value) for p in err.value.problems] == [(3, "<25%")]


def test_a_non_utf8_byte_after_a_byte_order_mark_names_its_true_line(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfpatient_id,age_years\nA,1\nB,\xe9\n")
    with pytest.raises(OSError, match=r"line 3 is not UTF-8 text \(byte 0xe9, the line's byte 3;"):
        read_records(path)


def test_file_lines_are_dropped_not_misquoted_once_the_rows_are_reordered(tmp_path):
    lines = _lines()
    lines[2] = lines[2].replace(lines[2].split(",")[1], "55", 1)  # the second record's age: out of range
    frame = read_records(_write(tmp_path / "one_bad.csv", lines))
    with pytest.raises(RecordError) as as_read:
        validate_records(frame)
    assert [(p.row, p.line) for p in as_read.value.problems] == [(2, 3)]
    reordered = frame.sort_values("patient_id", ascending=False).reset_index(drop=True)
    with pytest.raises(RecordError) as after_sorting:
        validate_records(reordered)
    assert [p.line for p in after_sorting.value.problems] == [None]  # no line rather than a wrong one


def test_classic_mac_line_endings_are_read_and_utf16_gets_a_clear_error(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    mac = tmp_path / "mac.csv"
    mac.write_bytes(text.replace("\r\n", "\n").replace("\n", "\r").encode("utf-8"))
    pd.testing.assert_frame_equal(read_records(mac), read_records(EXAMPLE))
    utf16 = tmp_path / "unicode.csv"
    utf16.write_bytes(text.encode("utf-16"))
    code, output = _validate_cli(utf16)
    assert code == 2 and "is UTF-16 text" in output and output.count("\n") == 1
