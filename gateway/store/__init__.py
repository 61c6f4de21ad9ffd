"""The claims store: every message, bill, line, decision, reply and override (SQLite by default,
PostgreSQL for several instances on one database).

``Store`` puts the parts together over one engine; each part is a module that owns one concern
and its SQL:

- ``store.intake`` (``intake.py``): what one received message produced, written in one
  transaction, and the idempotency lookups;
- ``store.history`` (``history.py``): earlier claims as the rules see them (``ClaimHistory``),
  also as of a stored message;
- ``store.outbox`` and ``store.acks`` (``outbox.py``, ``acks.py``): delivering replies, dead
  letters, acknowledgment tracking and signals; ``replies.py`` is the ``replies`` table's one
  writer;
- ``store.messages`` (``messages.py``): received messages for operators;
- ``store.casework`` (``casework.py``): bills for case workers, overrides, effective status;
- ``store.tariff_imports`` (``tariff_imports.py``): imported tariff files;
- ``store.practices`` (``practices.py``): imported practice registers and their rows;
- ``store.users`` (``users.py``): the web console's users, sessions, login attempts and audit
  log;
- ``store.console`` (``console.py``): what the console and the claim status API read beyond
  case work and the outbox (worklist, search, payout lines, one sender's claims);
- ``store.retention`` (``retention.py``): which bytes may move to archive files, and where
  archived bytes are (``gateway retention``).

The parts write portable SQL through ``engine.py``; ``sqlite.py`` and ``postgres.py`` are the
engines, the only modules that know which database it is (with ``migrations.py``, ``schema.sql``
and its translation for PostgreSQL, ``ddl.py``); ``config.py`` says which one is configured
(``[database]``), ``database.py`` opens it.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.acks import Acks
from gateway.store.casework import CaseWork
from gateway.store.console import ConsoleViews
from gateway.store.database import Database, open_engine
from gateway.store.engine import Engine
from gateway.store.history import History
from gateway.store.intake import Intake
from gateway.store.messages import ReceivedMessages
from gateway.store.outbox import Outbox
from gateway.store.paper import StoredPaperClaims
from gateway.store.practices import StoredPracticeImports
from gateway.store.retention import Retention
from gateway.store.tariff_imports import StoredTariffImports
from gateway.store.users import ConsoleUsers

__all__ = ["Database", "Store"]


class Store:
    """The claims database, created or migrated when opened; one part per concern.

    ``where`` is a SQLite file, a configured ``Database``, or an engine already open (which the
    store then closes). Every part may be used from any thread: the engine serialises or pools
    its connections."""

    def __init__(self, where: Path | Database | Engine) -> None:
        if isinstance(where, Path):
            where = Database(path=where)
        engine = open_engine(where) if isinstance(where, Database) else where
        #: Where the store is (None when it was given an open engine).
        self.database = where if isinstance(where, Database) else None
        self.engine = engine
        self.intake = Intake(self.engine)
        self.history = History(self.engine)
        self.outbox = Outbox(self.engine)
        self.acks = Acks(self.engine)
        self.messages = ReceivedMessages(self.engine)
        self.casework = CaseWork(self.engine)
        self.tariff_imports = StoredTariffImports(self.engine)
        self.paper = StoredPaperClaims(self.engine)
        self.practices = StoredPracticeImports(self.engine)
        self.users = ConsoleUsers(self.engine)
        self.console = ConsoleViews(self.engine)
        self.retention = Retention(self.engine)

    def close(self) -> None:
        self.engine.close()
