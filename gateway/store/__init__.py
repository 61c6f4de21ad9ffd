"""The claims store: every message, bill, line, decision, reply and override (SQLite by default).

``Store`` puts the parts together over one engine; each part owns one concern and its SQL:

- ``intake``: writing what one received message produced, in one transaction, and the
  idempotency lookups (``gateway.store.intake``);
- ``history``: earlier claims as the rules see them, ``ClaimHistory`` (``.history``);
- ``outbox`` and ``acks``: delivering replies, dead letters, ack tracking and signals
  (``.outbox``, ``.acks``; the table's one writer is ``.replies.write_replies``);
- ``messages``: received messages for operators (``.messages``);
- ``casework``: bills for case workers, overrides, effective status (``.casework``);
- ``tariff_imports``: imported tariff files (``.tariff_imports``).

The engine (``gateway.store.sqlite``) is the one module that knows the database is SQLite; the
parts write portable SQL through ``gateway.store.engine``.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.acks import Acks
from gateway.store.casework import CaseWork
from gateway.store.history import History
from gateway.store.intake import Intake
from gateway.store.messages import ReceivedMessages
from gateway.store.outbox import Outbox
from gateway.store.sqlite import SqliteEngine
from gateway.store.tariff_imports import StoredTariffImports

__all__ = ["Store"]


class Store:
    """The claims database at ``path``, created or migrated when opened; one part per concern.

    Every part may be used from any thread: the engine serialises its connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine = SqliteEngine(path)
        self.intake = Intake(self.engine)
        self.history = History(self.engine)
        self.outbox = Outbox(self.engine)
        self.acks = Acks(self.engine)
        self.messages = ReceivedMessages(self.engine)
        self.casework = CaseWork(self.engine)
        self.tariff_imports = StoredTariffImports(self.engine)

    def close(self) -> None:
        self.engine.close()
