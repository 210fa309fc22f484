"""Install carrisk as a user would and use it from another directory: the CI check of a regular install.

    python tools/wheel_test.py [--keep]

Builds the sdist and, from it, the wheel (``python -m build``, so the sdist is tested too), creates a fresh virtual
environment in a temporary directory (no system site-packages, so a missing dependency fails here), installs the
wheel with its dependencies (pip's cache and the configured wheel directories are reused), and then, from a
directory outside the checkout and with ``PYTHONPATH`` cleared:

- ``carrisk predict <example patients> --out predictions.csv`` with the shipped default model;
- ``carrisk explain`` on two example patients;
- ``python -c "import carrisk; carrisk.load_default_model()"``, checking carrisk was imported from the venv;
- ``carrisk records-help`` and ``python -m carrisk --version``.

Exit status 0 when every step passes; otherwise the failing command's output is printed and the temporary
directory is kept for inspection.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "carrisk" / "data" / "example_patients.csv"


def run(command: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    """Run ``command``; on failure print its output and raise SystemExit."""
    shown = " ".join(map(str, command))
    print(f"$ {shown}", flush=True)
    done = subprocess.run(list(map(str, command)), cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        raise SystemExit(f"wheel test FAILED (exit {done.returncode}): {shown}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory.")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="carrisk-wheel-test-"))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    elsewhere = scratch / "elsewhere"
    elsewhere.mkdir()
    run([sys.executable, "-m", "build", "--outdir", scratch / "dist", ROOT], cwd=elsewhere, env=env)
    wheels = sorted((scratch / "dist").glob("carrisk-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"wheel test FAILED: expected one wheel in {scratch / 'dist'}, found {wheels}")
    venv = scratch / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=elsewhere, env=env)
    python, carrisk = venv / "bin" / "python", venv / "bin" / "carrisk"
    run([python, "-m", "pip", "install", "--quiet", wheels[0]], cwd=elsewhere, env=env)

    out = run([carrisk, "predict", EXAMPLE, "--out", "predictions.csv"], cwd=elsewhere, env=env)
    with open(EXAMPLE, newline="", encoding="utf-8") as handle:
        expected = len(list(csv.DictReader(handle)))
    with open(elsewhere / "predictions.csv", newline="", encoding="utf-8") as handle:
        predicted = list(csv.DictReader(handle))
    if len(predicted) != expected or "6-month EFS" not in out:
        raise SystemExit(f"wheel test FAILED: {len(predicted)} predictions for {expected} example patients")
    two = elsewhere / "two.csv"
    two.write_text("".join(EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:3]), encoding="utf-8")
    run([carrisk, "explain", two, "--out", "plots"], cwd=elsewhere, env=env)
    if not list((elsewhere / "plots").glob("waterfall_*.png")):
        raise SystemExit("wheel test FAILED: explain wrote no waterfall plot")
    code = "import carrisk; carrisk.load_default_model(); print(carrisk.__file__, carrisk.default_model_path())"
    where = run([python, "-c", code], cwd=elsewhere, env=env).split()
    if not all(Path(path).resolve().is_relative_to(venv.resolve()) for path in where):
        raise SystemExit(f"wheel test FAILED: carrisk or its default model was found outside the venv: {where}")
    if "patient_id" not in run([carrisk, "records-help"], cwd=elsewhere, env=env):
        raise SystemExit("wheel test FAILED: records-help does not print the record documentation")
    run([python, "-m", "carrisk", "--version"], cwd=elsewhere, env=env)
    print(f"wheel test passed: {wheels[0].name} installed in a fresh venv predicts {expected} example patients")
    if args.keep:
        print(f"kept {scratch}")
    else:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
