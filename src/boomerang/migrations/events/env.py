"""Alembic environment of the DuckDB event log."""

from alembic import context
from alembic.ddl.impl import DefaultImpl


class DuckDBImpl(DefaultImpl):
    """Alembic knows no DuckDB; its DDL is close enough to PostgreSQL's default behaviour."""

    __dialect__ = "duckdb"
    transactional_ddl = True


config = context.config
context.configure(connection=config.attributes["connection"], target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
