"""Reference values for the competing-risks tests from R's cmprsk: ``python -m benchmarks.competing_reference``.

:func:`reference_data` builds a small competing-risks data set in code (fixed seed, times rounded to whole
days so that ties occur); the script writes it to a temporary CSV, runs ``benchmarks/competing_reference.R``
(cmprsk ``cuminc`` for Gray's test and ``crr`` for Fine-Gray) and prints the JSON that
``tests/test_competing_nonparametric.py`` and ``tests/test_competing_regression.py`` pin. Needs ``Rscript`` with
cmprsk (Debian: r-cran-cmprsk).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

R_SCRIPT = Path(__file__).with_suffix(".R")
SEED = 20261125
N_PATIENTS = 400


def reference_data(n: int = N_PATIENTS, seed: int = SEED) -> pd.DataFrame:
    """Three competing causes from exponential cause-specific hazards, uniform censoring, whole-day times.

    Returns
    -------
    DataFrame
        ``time`` (days, ties), ``cause`` (0 censored, 1-3), ``group`` (naive/responder/nonresponder),
        ``high_burden``, ``age_per_10y``, ``construct_41bb``.
    """
    rng = np.random.default_rng(seed)
    group = rng.choice(np.array(["naive", "responder", "nonresponder"]), size=n, p=[0.75, 0.13, 0.12])
    high_burden = (rng.random(n) < 0.45).astype(int)
    age_per_10y = np.round(rng.uniform(0.1, 3.0, n), 2)
    construct_41bb = (rng.random(n) < 0.85).astype(int)
    nonresponder = group == "nonresponder"
    rates = np.column_stack(
        [
            0.0006 * np.exp(0.8 * high_burden + 0.3 * age_per_10y + 0.5 * construct_41bb + 0.6 * nonresponder),
            0.0008 * np.exp(0.3 * high_burden - 0.4 * construct_41bb),
            np.full(n, 0.0003),
        ]
    )
    latent = rng.standard_exponential((n, 3)) / rates
    censor = rng.uniform(60.0, 1500.0, n)
    first = latent.min(axis=1)
    cause = np.where(first <= censor, latent.argmin(axis=1) + 1, 0)
    time = np.ceil(np.minimum(first, censor))
    return pd.DataFrame(
        {
            "time": time,
            "cause": cause,
            "group": group,
            "high_burden": high_burden,
            "age_per_10y": age_per_10y,
            "construct_41bb": construct_41bb,
        }
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference.csv"
        reference_data().to_csv(path, index=False)
        result = subprocess.run(["Rscript", str(R_SCRIPT), str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"Rscript failed: {result.stderr.strip()}")
    print(result.stdout, end="")


if __name__ == "__main__":
    main()
