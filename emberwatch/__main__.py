"""``python -m emberwatch``: the same command line as ``emberwatch``."""

from emberwatch.cli.main import app

app(prog_name="emberwatch")
