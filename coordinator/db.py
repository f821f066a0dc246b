"""Engine, sessions and migrations. SQLite by default, PostgreSQL by URL.

Writes that must not interleave — ledger charges, approvals, audit appends — are serialised:
on SQLite every transaction begins ``IMMEDIATE`` (one writer at a time); on PostgreSQL the
services lock the rows of the touched datasets and the audit chain head (``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from common.errors import UsageError

__all__ = ["Database"]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as error:
            raise UsageError(f"cannot reach or migrate the database: {str(error.orig).splitlines()[0]}") from None
        except IntegrityError as error:   # rows a newer revision's constraints refuse, e.g. a negative charge
            raise UsageError(f"the database holds rows the schema now refuses ({str(error.orig).splitlines()[0]}); "
                             "run 'tillit audit verify' to see what was changed") from None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together or not at all."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session that commits at the end (or rolls back on an error); a long operation may commit
        part of its work earlier itself (a launch commits ``launching`` before it calls ``flwr run``)."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None     # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except Exception as error:  # noqa: BLE001 - a bad URL or a missing driver is a usage error
        raise UsageError(f"database URL not usable: {type(error).__name__}: {error}") from None
