"""carrisk: event-free survival after CD19 CAR T-cell therapy for relapsed/refractory B-ALL."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("carrisk")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
