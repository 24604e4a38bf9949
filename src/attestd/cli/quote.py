"""``attestd quote``: Verify TPM 2.0 quotes."""

from __future__ import annotations

import typer

app = typer.Typer(help="Verify TPM 2.0 quotes.", no_args_is_help=True)
