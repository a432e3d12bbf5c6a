"""Who the SQL catalog is and how often its set of versions changed (see
`base.CatalogIdentity`): the one row of catalog_instance, and the write transaction
every change of the set of versions goes through, which raises the generation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, select, update

from lodestore.catalog.base import GenerationListener
from lodestore.catalog.records import CatalogIdentity
from lodestore.catalog.schema import catalog_instance, versions
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_rows import AnyRow

# Built once: the web page asks for the identity on every stat cards and own bytes request.
_INSTANCE = select(catalog_instance.c.instance_id, catalog_instance.c.generation)
_ANY_VERSION = select(versions.c.id).limit(1)


def _instance_row(conn: Connection) -> AnyRow:
    """The catalog_instance row; only a database migrated by hand lacks it: made once."""
    row = conn.execute(_INSTANCE).first()
    if row is None:
        conn.execute(catalog_instance.insert().values(instance_id=str(uuid.uuid4()), generation=0))
        row = conn.execute(_INSTANCE).one()
    return row


class IdentityStore:
    """The catalog's identity and generation. `notify` hears (instance_id, generation)
    after each committed change of the set of versions (the catalog passes its
    `on_generation` listener through it)."""

    def __init__(self, db: Database, notify: GenerationListener) -> None:
        self.db = db
        self.notify = notify

    def identity(self) -> CatalogIdentity:
        with self.db.reading() as conn:
            row = conn.execute(_INSTANCE).first()
            has_versions = conn.execute(_ANY_VERSION).first() is not None
        if row is None:
            with self.db.writing() as conn:
                row = _instance_row(conn)
        return CatalogIdentity(row.instance_id, int(row.generation), has_versions)

    @contextmanager
    def writing_versions(self) -> Iterator[Connection]:
        """A write transaction that changes the set of versions: it bumps the generation
        (first, so concurrent ones serialise on that row), and once it has committed
        `notify` hears of it."""
        with self.db.writing() as conn:
            _instance_row(conn)
            # One atomic increment, never "read, then write read+1": on PostgreSQL two
            # transactions may read the same value before either locks the row, and the
            # later writer would set the generation BACK below one a store has already
            # seen (gc then refuses the catalog as an old backup).
            row = conn.execute(update(catalog_instance)
                               .values(generation=catalog_instance.c.generation + 1)
                               .returning(catalog_instance.c.instance_id, catalog_instance.c.generation)).one()
            yield conn
        self.notify(row.instance_id, int(row.generation))
