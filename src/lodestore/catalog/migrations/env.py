"""Alembic environment for the catalog.

There is no alembic.ini: `lodestore.catalog.migrate.alembic_config` builds the config in
code, and `migrate.ensure_schema` hands us an open connection (already inside the
transaction that serialises concurrent migrations) through ``config.attributes``.

To write the next migration (developers only)::

    from alembic import command
    from lodestore.catalog.migrate import alembic_config
    command.revision(alembic_config("sqlite:////tmp/dev.db"), "add foo", autogenerate=True,
                     rev_id="0002")

then add its id to ``migrate.REVISIONS``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from lodestore.catalog.schema import metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # We emit BEGIN ourselves on SQLite, so its DDL is transactional too: a failed
        # migration leaves the previous schema intact.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no sqlalchemy.url: build the config with migrate.alembic_config")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
