"""``attestd eventlog``: Parse, show and replay TCG PC Client firmware event logs."""

from __future__ import annotations

import typer

app = typer.Typer(help="Parse, show and replay TCG PC Client firmware event logs.", no_args_is_help=True)
