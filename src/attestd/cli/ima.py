"""``attestd ima``: Parse and replay IMA runtime measurement lists."""

from __future__ import annotations

import typer

app = typer.Typer(help="Parse and replay IMA runtime measurement lists.", no_args_is_help=True)
