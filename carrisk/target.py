"""The survival target: one set of rules for reading, checking and building scikit-survival's structured array.

A target is a numpy structured array with exactly one boolean field (the event indicator, True = event observed)
and one floating-point field (the follow-up time), under any names and in either order, as
``sksurv.util.Surv.from_arrays`` builds it. Times must be finite and non-negative.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sksurv.util import Surv

__all__ = ["check_per_patient", "check_survival_target", "make_target", "months_hint", "target_arrays"]


def _event_time_fields(y: np.ndarray) -> tuple[str, str]:
    """The names of the boolean event field and the floating-point time field of ``y``."""
    names = getattr(getattr(y, "dtype", None), "names", None)
    if not isinstance(y, np.ndarray) or names is None:
        raise ValueError(
            "expected a structured survival target, e.g. sksurv.util.Surv.from_arrays(event=..., time=...), "
            f"got {type(y).__name__}"
        )
    bool_fields = [name for name in names if np.issubdtype(y.dtype[name], np.bool_)]
    float_fields = [name for name in names if np.issubdtype(y.dtype[name], np.floating)]
    if len(bool_fields) != 1 or len(float_fields) != 1:
        raise ValueError(
            "the survival target must have exactly one boolean field (event) and one float field (time); "
            f"got fields {dict(y.dtype.fields or {})}. Build it with sksurv.util.Surv.from_arrays(event, time)."
        )
    return bool_fields[0], float_fields[0]


def target_arrays(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a structured survival target into (event, time), finding the fields by type, not by name or order.

    Parameters
    ----------
    y : structured ndarray
        One boolean field and one float field (see the module docstring).

    Returns
    -------
    event : ndarray of bool
    time : ndarray of float64

    Raises
    ------
    ValueError
        If ``y`` is not such an array, or a time is negative, NaN or infinite.
    """
    event_field, time_field = _event_time_fields(y)
    event = np.asarray(y[event_field], dtype=bool)
    time = np.asarray(y[time_field], dtype=float)
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise ValueError(f"field {time_field!r} of the survival target must hold finite, non-negative follow-up times")
    return event, time


def check_survival_target(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a survival target for fitting a model and return (event, time).

    Raises
    ------
    ValueError
        With a message saying how to fix it: not a structured target, negative or non-finite times, fewer than 2
        rows, no events, or all times equal.
    """
    event, time = target_arrays(np.asarray(y))
    if len(time) < 2:
        raise ValueError(f"need at least 2 patients to fit a survival model, got {len(time)}")
    if not event.any():
        raise ValueError("the training data contain no events (every patient is censored): nothing to learn")
    if np.ptp(time) == 0:
        raise ValueError("every survival time is the same: the time ordering carries no information")
    return event, time


def check_per_patient(values: ArrayLike, name: str, n: int, *, patients: str = "patient") -> np.ndarray:
    """Return ``values`` (predictions, risk scores) as a finite 1-D float array with one value per patient.

    Parameters
    ----------
    values : array-like
        One number per patient.
    name : str
        The argument's name, for the message.
    n : int
        Number of patients (the target's length).
    patients : str, default "patient"
        Who the values are for, for the message (e.g. "test patient").

    Raises
    ------
    ValueError
        If ``values`` is not 1-D of length ``n``, or holds NaN or infinite values (their rows are listed).
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array with one value per {patients} ({n}), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values at rows {np.flatnonzero(~np.isfinite(array))}")
    return array


def make_target(event: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Build the target in scikit-survival's layout: fields ``event`` (bool) then ``time`` (float)."""
    return Surv.from_arrays(event=event, time=time, name_event="event", name_time="time")


def months_hint(time: np.ndarray) -> str:
    """A hint for an error message when follow-up looks recorded in months (the longest time is 120 or less).

    EFS cohorts are followed for months to years, so a longest "follow-up" of 120 days or less most likely counts
    months; carrisk's times are days.
    """
    longest = float(np.max(time)) if np.size(time) else 0.0
    return "; were the times recorded in months? carrisk reads days" if 0 < longest <= 120 else ""
