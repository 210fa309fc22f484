"""Benchmark carrisk against its peers in one run: ``python -m benchmarks [--quick] [--only PARTS]``.

Parts (default: all, in this order): ``accuracy`` (cross-validated discrimination and calibration on public
datasets and the simulated cohort), ``nested_cv`` (wall time of carrisk's nested CV on the simulated cohort),
``speed`` (forest fit/predict time and memory vs n, and the time-grid targets),
``explain`` (runs benchmarks/bench_explain.py), ``latency`` (predict_efs on 1 and 10,000 patients),
``cv_coverage`` (coverage of the CV-mean confidence interval over replicate simulated cohorts), ``truth`` (every
candidate model scored against the simulator's known EFS: benchmarks/truth.py). Each part
writes ``benchmarks/results/<part>.json``; SUMMARY.md and the plots are regenerated from the JSON files after
every part, so a long run can be followed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import time
from pathlib import Path

from benchmarks import _common, report


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3-fold x 1, subsampled flchain, small n (< 5 minutes)")
    parser.add_argument(
        "--only",
        default=",".join(_common.PARTS),
        help=f"comma-separated parts to run (default: all): {','.join(_common.PARTS)}",
    )
    parser.add_argument("--out", type=Path, default=_common.RESULTS_DIR, help="results directory")
    parser.add_argument(
        "--summary-only", action="store_true", help="only regenerate SUMMARY.md and the plots from the JSON files"
    )
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(args.parts) - set(_common.PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(_common.PARTS)}")
    return args


#: The module of benchmarks/ that runs each part; imported only when its part runs.
PART_MODULES = {part: part for part in _common.PARTS} | {"explain": "explain_speed"}


def _run_part(part: str, settings: _common.Settings, out: Path) -> None:
    importlib.import_module(f"benchmarks.{PART_MODULES[part]}").run(settings, out)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.summary_only:
        print(report.write_summary(out))
        return 0
    settings = _common.QUICK if args.quick else _common.FULL
    run_log = _common.read_json(out / "run.json") or {"parts": {}}
    command = "python -m benchmarks" + (" --quick" if args.quick else "") + f" --only {','.join(args.parts)}"
    started = time.perf_counter()
    failed = []
    for part in args.parts:
        _common.log(f"=== {part} ({settings.mode} mode) ===")
        part_started = time.perf_counter()
        status = "ok"
        try:
            _run_part(part, settings, out)
        except Exception as err:  # one failing part must not hide the others
            status = f"failed: {type(err).__name__}: {err}"
            failed.append(part)
            _common.log(status)
        run_log["parts"][part] = {
            "mode": settings.mode,
            "seconds": time.perf_counter() - part_started,
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "status": status,
        }
        _common.write_json(out / "run.json", run_log)
        if settings.mode == "full":  # a long run can be followed in SUMMARY.md
            try:
                report.write_summary(out)
            except Exception as err:  # the final call below raises it; a run is not stopped by its report
                _common.log(f"SUMMARY.md not updated: {type(err).__name__}: {err}")
    run_log["last_run"] = {"command": command, "mode": settings.mode, "seconds": time.perf_counter() - started}
    _common.write_json(out / "run.json", run_log)
    summary = report.write_summary(out)
    _common.log(f"done in {time.perf_counter() - started:.0f} s; summary: {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
