"""The shared in-process runner of the carrisk command line for tests: `run_cli("predict", path, ...)`."""

from typer.testing import CliRunner, Result

from carrisk.cli import app

_RUNNER = CliRunner()


def run_cli(*args: object) -> Result:
    """Run ``carrisk *args`` (each argument as ``str``) with wide, uncoloured output; a traceback fails the test."""
    result = _RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert "Traceback" not in result.output, result.output
    return result
