"""``python -m npfm`` runs the CLI."""

from npfm.cli import app

app(prog_name="npfm")
