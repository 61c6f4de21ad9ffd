"""The register in force for a long-running process: reloaded when a new import is recorded.

``LiveRegister.current()`` asks the store for the version in force (one indexed query) and
loads the rows only when it changed, so ``gateway practices import`` takes effect in a running
daemon from its next message, without a restart, as tariff imports do. A ``PracticeRegister``
answers ``current()`` with itself: both are a ``PracticeSource``.
"""

from __future__ import annotations

import threading
from typing import Protocol

from gateway.logs import get_logger
from gateway.practices.imports import PracticeImports
from gateway.practices.loading import load_register
from gateway.practices.model import EMPTY_REGISTER, PracticeRegister

__all__ = ["LiveRegister", "PracticeSource"]

log = get_logger("practices")


class PracticeSource(Protocol):
    """Where the register in force comes from."""

    def current(self) -> PracticeRegister: ...


class LiveRegister:
    """The newest imported register, reloaded on change (safe from any thread)."""

    def __init__(self, imports: PracticeImports) -> None:
        self._imports = imports
        self._register = EMPTY_REGISTER
        self._lock = threading.Lock()
        self._warned = False

    def current(self) -> PracticeRegister:
        version = self._imports.version()
        with self._lock:
            if version != self._register.version:
                self._register = load_register(self._imports)
                if self._register:
                    log.info(
                        "practice_register_loaded",
                        version=self._register.version,
                        practices=len(self._register),
                    )
            if not self._register and not self._warned:
                self._warned = True
                log.warning(
                    "no_practice_register",
                    hint="practice types come from the MsgHead (KITH 9060) only, and the "
                    "agreement rules are inactive until `gateway practices import FILE` has run",
                )
            return self._register
