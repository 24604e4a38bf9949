"""Alembic environment: the connection comes from :func:`attestd.store.db.migrate` (``config.attributes``)."""

from alembic import context

from attestd.store.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only used by `alembic` run by hand with sqlalchemy.url set
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url")).connect()

context.configure(connection=connection, target_metadata=target_metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
