"""Provenance: package versions and data fingerprints recorded with every result."""

from __future__ import annotations

import platform

import pandas as pd
import sklearn

from carrisk.provenance import RECORDED_PACKAGES, data_fingerprint, package_versions


def test_package_versions_record_python_the_recorded_packages_and_none_for_missing_ones():
    versions = package_versions(extra=("no-such-distribution-carrisk-test",))
    assert list(versions) == ["python", *RECORDED_PACKAGES, "no-such-distribution-carrisk-test"]
    assert versions["python"] == platform.python_version()
    assert versions["scikit-learn"] == sklearn.__version__
    assert versions["no-such-distribution-carrisk-test"] is None


def test_data_fingerprint_changes_with_any_cell_and_not_with_the_index():
    table = pd.DataFrame({"time": [1.0, 2.0], "event": [1, 0]})
    fingerprint = data_fingerprint(table)
    assert fingerprint["rows"] == 2 and fingerprint["columns"] == ["time", "event"]
    assert data_fingerprint(table.set_axis([10, 11])) == fingerprint
    assert data_fingerprint(table.assign(event=[1, 1]))["sha256"] != fingerprint["sha256"]
