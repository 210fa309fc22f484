"""``python -m carrisk``: the same command line as ``carrisk``."""

from carrisk.cli import app

app(prog_name="carrisk")
