import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

EXAMPLE = Path(__file__).resolve().parents[1] / "carrisk" / "data" / "example_patients.csv"


@pytest.fixture
def example_records() -> pd.DataFrame:
    from carrisk.schema import read_records

    return read_records(EXAMPLE)
