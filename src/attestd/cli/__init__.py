"""Command-line interface (typer + rich). See :mod:`attestd.cli.main`."""
