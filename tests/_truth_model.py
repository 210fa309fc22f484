"""A 'model' that predicts each simulated patient's true EFS: known answers for evaluation and updating tests."""

import numpy as np
import pandas as pd

from carrisk.simulate import SimulatedCohort, true_survival


class TruthModel:
    """Predicts each simulated patient's true EFS raised to ``power`` (1: perfectly calibrated by construction;
    above 1: too pessimistic). Patients are found by ``patient_id`` in ``cohort``."""

    def __init__(self, cohort: SimulatedCohort, power: float = 1.0) -> None:
        self.cohort = cohort
        self.power = power
        self.row_of = {pid: i for i, pid in enumerate(cohort.records["patient_id"])}

    def predict_survival(self, records: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        rows = [self.row_of[pid] for pid in records["patient_id"]]
        return true_survival(self.cohort, np.asarray(times, dtype=float))[rows] ** self.power
