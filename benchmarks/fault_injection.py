"""Fault injection for model bundles: kill saves at random moments and check what is left on disk.

    python -m benchmarks.fault_injection [--kills 40] [--seed 0]

Each round starts two worker processes that save, over and over and to the same path, one of two different
fitted models (so concurrent saves and the save lock are exercised too), waits until both are saving, and
SIGKILLs each at an independent random moment within the next 1.5 s. After every round the bundle must load
(``carrisk.load_model``) and predict exactly as one of the two models; the temporary directories and aside copies
that the kills left are counted (the next save removes them). At the end one clean save must leave nothing
but the bundle. Writes ``benchmarks/results/fault_injection.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import _common
from carrisk import fit_efs_model, load_model, save_model, simulate_cohort, survival_target


def _worker(source: Path, target: Path) -> None:
    """Load the bundle at ``source``, say so, then save it to ``target`` until killed."""
    model = load_model(source)
    print("ready", flush=True)
    while True:
        save_model(model, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=40, help="Rounds (two workers killed per round).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill times.")
    parser.add_argument("--worker", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(Path(args.worker[0]), Path(args.worker[1]))
        return
    rng = np.random.default_rng(args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="carrisk-fault-injection-"))
    cohort = simulate_cohort(n=200, seed=3)
    y = survival_target(cohort.records)
    sources, expected = [], []
    for seed in (1, 2):
        model = fit_efs_model(cohort.records, y, "rsf", seed=seed, n_estimators=50, min_samples_leaf=15)
        sources.append(save_model(model, scratch / f"source-{seed}"))
        expected.append(model.predict_efs(cohort.records.head(20), top=0)["efs_6mo"].to_numpy())
    target = scratch / "bundle"
    save_model(load_model(sources[0]), target)
    env = {key: value for key, value in os.environ.items()} | {"PYTHONPATH": str(Path.cwd())}
    rounds = []
    for round_index in range(args.kills):
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.fault_injection", "--worker", str(source), str(target)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for source in sources
        ]
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        start = time.monotonic()
        for delay, worker in sorted(zip(rng.uniform(0.0, 1.5, size=2), workers, strict=True), key=lambda p: p[0]):
            time.sleep(max(0.0, start + delay - time.monotonic()))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        left = sorted(entry.name for entry in scratch.iterdir() if entry.name.startswith(".bundle."))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                loaded = load_model(target)
                efs = loaded.predict_efs(cohort.records.head(20), top=0)["efs_6mo"].to_numpy()
                intact = any(np.array_equal(efs, candidate) for candidate in expected)
                error = None
            except Exception as failure:  # recorded, never hidden: an unreadable bundle is the finding
                intact, error = False, f"{type(failure).__name__}: {failure}"
        rounds.append(
            {"round": round_index, "intact": intact, "error": error, "left_after_kill": left,
             "recovery_warnings": [str(w.message) for w in caught]}
        )  # fmt: skip
        _common.log(f"round {round_index}: intact={intact} left={left}")
    save_model(load_model(sources[1]), target)
    remaining = sorted(entry.name for entry in scratch.iterdir() if entry.name.startswith(".bundle."))
    summary = {
        "kills": 2 * args.kills,
        "rounds": args.kills,
        "intact_after_every_round": all(r["intact"] for r in rounds),
        "rounds_intact": sum(r["intact"] for r in rounds),
        "rounds_with_temp_dirs_left": sum(any(n.endswith(".tmp") for n in r["left_after_kill"]) for r in rounds),
        "rounds_with_aside_copy_left": sum(any(n.endswith(".old") for n in r["left_after_kill"]) for r in rounds),
        "rounds_with_recovery_warning": sum(bool(r["recovery_warnings"]) for r in rounds),
        "left_after_final_clean_save": remaining,
    }
    _common.log(str(summary))
    payload = {
        "part": "fault_injection",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _common.machine(),
        "versions": _common.package_versions(),
        "seeds": {"kill_times": args.seed, "cohort": 3, "models": [1, 2]},
        "command": f"python -m benchmarks.fault_injection --kills {args.kills} --seed {args.seed}",
        "summary": summary,
        "rounds": rounds,
    }
    _common.write_json(_common.RESULTS_DIR / "fault_injection.json", payload)
    if not summary["intact_after_every_round"] or remaining:
        raise SystemExit("fault injection FAILED: see benchmarks/results/fault_injection.json")


if __name__ == "__main__":
    main()
