"""Units of time: every day constant and horizon carrisk uses, in one place.

A year is 365.25 days (the Julian year: the average including leap years), a month a twelfth of it, 30.4375 days;
the horizons of this literature, 6 and 12 months from infusion, are therefore 182.625 and 365.25 days.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "DAY28_DAYS",
    "DAYS_PER_MONTH",
    "DAYS_PER_YEAR",
    "HORIZONS_DAYS",
    "SIX_MONTHS_DAYS",
    "TWELVE_MONTHS_DAYS",
    "TWO_YEARS_DAYS",
]

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12  # 30.4375
SIX_MONTHS_DAYS = 6 * DAYS_PER_MONTH  # 182.625
TWELVE_MONTHS_DAYS = 12 * DAYS_PER_MONTH  # 365.25
TWO_YEARS_DAYS = 2 * DAYS_PER_YEAR  # 730.5
#: The day-28 response assessment after infusion.
DAY28_DAYS = 28.0
#: The prediction horizons, by the names used in outputs (``efs_6mo``, ``auc_12mo``, ...).
HORIZONS_DAYS: Mapping[str, float] = MappingProxyType({"6mo": SIX_MONTHS_DAYS, "12mo": TWELVE_MONTHS_DAYS})
