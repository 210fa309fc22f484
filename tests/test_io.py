"""Safe outputs: spreadsheet-safe CSV (OWASP formula injection), atomic streams, file names from data, CSV headers."""

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

from carrisk._io import csv_stream, csv_text, json_array_stream, neutralise_cell, safe_filename, write_csv
from carrisk.schema import check_csv_header, read_records

DANGEROUS = ["=1+1", "+41", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x.example","click")', "\t=1+1", "\r=1+1"]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_text_cells_starting_with_a_formula_trigger_get_a_quote_prefix():
    frame = pd.DataFrame({"patient_id": DANGEROUS, "efs_6mo": np.linspace(0.1, 0.7, len(DANGEROUS))})
    rows = _cells(csv_text(frame))
    assert rows[0] == ["patient_id", "efs_6mo"]
    for (cell, _), original in zip(rows[1:], DANGEROUS):
        assert cell == "'" + original
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_a_leading_carriage_return_is_quoted_and_never_comes_back_as_a_formula():
    text = csv_text(pd.DataFrame({"patient_id": ["\r=1+1", "ok"]}))
    assert '"' in text.splitlines()[1]  # the control character forces quoting
    back = pd.read_csv(io.StringIO(text), dtype=str)
    assert back["patient_id"].tolist() == ["'\r=1+1", "ok"]


def test_control_characters_commas_and_quotes_are_quoted_and_round_trip():
    values = ["a\x0bb", "x,y", 'say "hi"', "line\nbreak", "plain"]
    back = pd.read_csv(io.StringIO(csv_text(pd.DataFrame({"note": values}))), dtype=str)
    assert back["note"].tolist() == values


def test_numbers_stay_numbers_and_missing_stays_empty():
    frame = pd.DataFrame(
        {"x": [-1.5, 0.1, np.nan], "n": pd.array([-3, 0, None], dtype="Int64"), "b": [True, False, True]}
    )
    rows = _cells(csv_text(frame))
    assert rows[1:] == [["-1.5", "-3", "True"], ["0.1", "0", "False"], ["", "", "True"]]
    back = pd.read_csv(io.StringIO(csv_text(frame)))
    np.testing.assert_array_equal(back["x"].to_numpy(), frame["x"].to_numpy())


def test_floats_round_trip_exactly():
    values = np.random.default_rng(0).random(200)
    rows = _cells(csv_text(pd.DataFrame({"v": values})))
    assert np.array_equal([float(r[0]) for r in rows[1:]], values)


def test_neutralise_leaves_safe_text_alone():
    assert neutralise_cell("EX-01") == "EX-01" and neutralise_cell("'=1") == "'=1" and neutralise_cell("") == ""


def test_write_csv_with_index_and_streams_write_whole_files(tmp_path):
    frame = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index(["=a", "b"], name="patient_id"))
    write_csv(tmp_path / "f.csv", frame, index=True)
    assert _cells((tmp_path / "f.csv").read_text()) == [["patient_id", "v"], ["'=a", "1.0"], ["b", "2.0"]]
    with csv_stream(tmp_path / "s.csv") as write:
        write(frame.reset_index().iloc[:1])
        write(frame.reset_index().iloc[1:])
    assert (tmp_path / "s.csv").read_text() == (tmp_path / "f.csv").read_text()
    with json_array_stream(tmp_path / "s.json") as write:
        write([{"a": 1}])
        write([])
        write([{"a": "=1+1"}, {"a": 0.1}])
    assert json.loads((tmp_path / "s.json").read_text()) == [{"a": 1}, {"a": "=1+1"}, {"a": 0.1}]  # JSON exact


def test_an_interrupted_stream_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError), csv_stream(tmp_path / "s.csv") as write:
        write(pd.DataFrame({"v": [1]}))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "patient_id", ["a/../../escaped", "../../etc/passwd", "/abs/path", "..", ".hidden", "C:\\x\\y", "a\x00b", ""]
)
def test_file_names_from_data_stay_inside_the_output_directory(tmp_path, patient_id):
    out = tmp_path / "plots"
    out.mkdir()
    path = safe_filename(out, f"waterfall_{patient_id}", ".png")
    assert path.parent == out.resolve() and path.name.endswith(".png")
    assert "/" not in path.name and "\\" not in path.name and not path.name.startswith(".")


def test_file_names_from_data_are_unique():
    taken: set[str] = set()
    names = [safe_filename("/tmp", stem, ".png", taken=taken).name for stem in ["a/b", "a_b", "a?b", "A_B"]]
    assert len(set(n.lower() for n in names)) == 4


def test_a_huge_one_line_file_is_rejected_from_its_header_without_parsing_it(tmp_path, monkeypatch):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"x" * 5_000_000)

    def never(*args, **kwargs):
        raise AssertionError("the whole file was handed to the CSV parser")

    monkeypatch.setattr(pd, "read_csv", never)
    with pytest.raises(OSError, match="first line is longer"):
        read_records(junk)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\x00\x01\x02PK\n", "binary"), (b"\xff\xfe\xfaabc\n1\n", "not UTF-8")],
)
def test_junk_files_fail_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(OSError, match=message):
        check_csv_header(path)
