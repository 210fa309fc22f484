"""Fuzz the record path: thousands of mutated rows through validate and ``carrisk predict --skip-invalid``.

Each batch starts from valid simulated records and mutates cells at random (formula strings, control characters,
non-finite and out-of-range numbers, huge and empty text, misspellings, duplicated identifiers). Every batch goes
through the real command line (in-process, typer's CliRunner) with the shipped default model, and checks:

* no traceback and no "unexpected error": exit code 0 (some rows predicted) or 1 (no valid row), nothing else
  (every 5th batch mutates half its cells, so that whole batches are invalid too);
* no silent drop: every input row is either predicted or listed in ``.rejected.csv``, never both, never neither;
* no reordering: predicted rows keep the input order;
* predictions are finite probabilities with lo <= point <= hi;
* spreadsheet safety: no cell of either CSV starts with ``= + - @ \\t \\r``.

Run: ``python -m benchmarks.fuzz_records [--rows 5200] [--batch 200] [--seed 0]`` (about 2 minutes on 2 cores for
the default 5,200 rows). Writes ``benchmarks/results/fuzz_records.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from carrisk._io import atomic_write_text
from carrisk.cli import app
from carrisk.schema import PREINFUSION_COLUMNS, read_records
from carrisk.simulate import simulate_cohort

RESULTS = Path(__file__).parent / "results"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
MUTATIONS: tuple[str, ...] = (
    "=1+1",
    "+41",
    "-2+3",
    "@SUM(A1)",
    '=HYPERLINK("http://x.example","click")',
    "\r=1+1",
    "\t=cmd",
    "inf",
    "-inf",
    "Infinity",
    "1e999",
    "nan",
    "-1",
    "1e6",
    "41",
    "101%",
    "",
    " ",
    "\x00",
    "a\x0bb",
    "line\nbreak",
    'say "hi", twice',
    "CD19 purple",
    "🙂",
    "x" * 5000,
    "0x10",
    "1,5",
    "12 %",
    "M4",
    "CNS4",
    "yes please",
    "not_rearranged",
)


def fuzz_batch(rng: np.random.Generator, records: pd.DataFrame, mutation_rate: float) -> pd.DataFrame:
    """Mutate cells of ``records`` (text) at random; sometimes duplicate an identifier."""
    table = records.astype(object).where(records.notna(), "").astype(str)
    columns = [c for c in PREINFUSION_COLUMNS if c in table.columns]
    for i in range(len(table)):
        for column in columns:
            if rng.random() < mutation_rate:
                table.iat[i, table.columns.get_loc(column)] = MUTATIONS[rng.integers(len(MUTATIONS))]
    if len(table) > 2 and rng.random() < 0.3:
        i, j = rng.choice(len(table), 2, replace=False)
        table.iat[j, 0] = table.iat[i, 0]
    return table


def _cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def check_batch(runner: CliRunner, table: pd.DataFrame, workdir: Path) -> dict[str, Any]:
    """Run one fuzzed table through ``validate`` and ``predict --skip-invalid`` and check the contracts."""
    source, out = workdir / "fuzz.csv", workdir / "p.csv"
    rejected_path = out.with_suffix(".rejected.csv")
    for path in (out, rejected_path):
        path.unlink(missing_ok=True)
    table.to_csv(source, index=False, quoting=csv.QUOTE_ALL)  # as a spreadsheet saves it: \r stays in its cell
    failures: list[str] = []
    validate = runner.invoke(app, ["validate", str(source)])
    result = runner.invoke(app, ["predict", str(source), "--skip-invalid", "--out", str(out)])
    for name, run in (("validate", validate), ("predict", result)):
        if "Traceback" in run.output or "unexpected error" in run.output or run.exit_code not in (0, 1):
            failures.append(f"{name}: exit {run.exit_code}: {run.output[-300:]}")
    # rows as the CLI read them (pandas drops a leading \r inside quotes; ids are compared as read)
    read_back = read_records(source)
    ids = read_back["patient_id"].astype(str).tolist()
    predicted = _cells(out)[1:] if out.exists() else []
    rejected = _cells(rejected_path)[1:] if rejected_path.exists() else []
    rejected_rows = {int(float(r[0])) for r in rejected if r and r[0]}
    predicted_ids = [row[0] for row in predicted]
    expected_ids = [pid for k, pid in enumerate(ids, start=1) if k not in rejected_rows]
    neutral = [("'" + p) if p.startswith(TRIGGERS) else p for p in expected_ids]
    table_problem = validate.exit_code == 1 and any(r and not r[0] for r in rejected)
    if not table_problem and predicted_ids != neutral:
        failures.append("predicted ids differ from the non-rejected input rows in input order (drop or reorder)")
    if len(predicted) + len(rejected_rows) != len(ids) and not table_problem:
        failures.append(f"{len(ids)} rows in, {len(predicted)} predicted + {len(rejected_rows)} rejected out")
    if validate.exit_code == 0 and rejected_rows:
        failures.append("validate passed but predict rejected rows")
    for row in predicted:
        values = np.array(row[1:7], dtype=float)
        if not (np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))):
            failures.append(f"non-probability prediction {row[:7]}")
        if not (values[1] <= values[0] <= values[2] and values[4] <= values[3] <= values[5]):
            failures.append(f"point outside its interval {row[:7]}")
    unsafe = sum(cell.startswith(TRIGGERS) for rows in (predicted, rejected) for row in rows for cell in row)
    if unsafe:
        failures.append(f"{unsafe} CSV cell(s) start with a formula trigger")
    return {
        "rows": len(ids),
        "predicted": len(predicted),
        "rejected_rows": len(rejected_rows),
        "exit_code": result.exit_code,
        "unsafe_cells": unsafe,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5200, help="fuzzed rows in total")
    parser.add_argument("--batch", type=int, default=200, help="rows per predict call")
    parser.add_argument(
        "--mutation-rate", type=float, default=0.02, help="probability that a cell is mutated (every 5th batch: 0.5)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "fuzz_records.json")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    runner = CliRunner()
    start = time.perf_counter()
    batches = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(0, args.rows, args.batch):
            n = min(args.batch, args.rows - index)
            records = simulate_cohort(n=n, seed=args.seed * 100_000 + index).records
            records["patient_id"] = [f"F{index + k:05d}" for k in range(n)]
            rate = 0.5 if len(batches) % 5 == 4 else args.mutation_rate  # every 5th batch: mostly invalid
            batches.append(check_batch(runner, fuzz_batch(rng, records, rate), Path(tmp)))
    summary = {
        "seed": args.seed,
        "rows": sum(b["rows"] for b in batches),
        "batches": len(batches),
        "mutation_rate": args.mutation_rate,
        "predicted_rows": sum(b["predicted"] for b in batches),
        "rejected_rows": sum(b["rejected_rows"] for b in batches),
        "batches_exit_1_no_valid_row": sum(b["exit_code"] == 1 for b in batches),
        "tracebacks_or_unexpected_errors": sum(any("exit" in f for f in b["failures"]) for b in batches),
        "batches_with_failures": sum(bool(b["failures"]) for b in batches),
        "unsafe_csv_cells": sum(b["unsafe_cells"] for b in batches),
        "failures": [f for b in batches for f in b["failures"]][:50],
        "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_text(args.out, json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=1))
    for failure in summary["failures"][:10]:
        print("FAILURE:", failure)
    return summary


if __name__ == "__main__":
    main()
