"""``python -m restpredict``."""

from restpredict.cli import app

app(prog_name="restpredict")
