"""The package's public namespace: every exported name resolves, and heavy libraries load only when used."""

import subprocess
import sys

import carrisk


def test_every_public_name_resolves():
    for name in carrisk.__all__:
        assert getattr(carrisk, name) is not None, name
    assert set(carrisk.__all__) <= set(dir(carrisk))


def test_unknown_name_is_an_attribute_error():
    try:
        carrisk.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_models_does_not_load_the_explanation_stack():
    code = (
        "import sys, carrisk.models; "
        "print(','.join(m for m in ('shap', 'numba', 'matplotlib', 'lifelines') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
