"""Alembic migrations of the attestd schema (run with :func:`attestd.store.db.migrate`)."""
