"""The store's engine: transactions, error mapping, and which modules know the driver."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gateway
from gateway.errors import StorageError
from gateway.records import ReplyRecord
from gateway.store import Store
from gateway.store.replies import write_replies

PACKAGE = Path(gateway.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_tariffs_reach_their_imports_without_importing_the_store() -> None:
    for path in sorted((PACKAGE / "tariffs").rglob("*.py")):
        store_imports = {n for n in _imports(path) if n.split(".")[:2] == ["gateway", "store"]}
        assert store_imports == set(), path


def test_only_the_engine_modules_import_the_driver() -> None:
    engine_modules = {"sqlite.py", "migrations.py", "transactions.py"}
    for path in sorted((PACKAGE / "store").glob("*.py")):
        if path.name not in engine_modules:
            assert "sqlite3" not in _imports(path), path


def _reply(n: int) -> ReplyRecord:
    return ReplyRecord("apprec", "HER:1", f"r{n}.eml", b"body", ebxml_message_id=f"m{n}")


def test_a_driver_error_rolls_back_and_becomes_a_storage_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "claims.sqlite")
    try:
        with (
            pytest.raises(StorageError, match=r"^could not queue: UNIQUE constraint failed"),
            store.engine.transaction("could not queue") as tx,
        ):
            write_replies(tx, [_reply(1)], received_id=None)
            write_replies(tx, [_reply(1)], received_id=None)  # the same file name again
        assert store.outbox.list_replies() == []
    finally:
        store.close()


def test_other_errors_roll_back_and_pass_unchanged(tmp_path: Path) -> None:
    store = Store(tmp_path / "claims.sqlite")
    try:
        with pytest.raises(KeyError), store.engine.transaction("never said") as tx:
            write_replies(tx, [_reply(1)], received_id=None)
            raise KeyError("boom")
        assert store.outbox.list_replies() == []
        with store.engine.transaction("could not queue") as tx:
            ids = write_replies(tx, [_reply(1), _reply(2)], received_id=None)
        assert [r.id for r in store.outbox.list_replies()] == ids
        assert ids[1] == ids[0] + 1
    finally:
        store.close()


def test_a_failed_read_is_a_storage_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "claims.sqlite")
    try:
        with pytest.raises(StorageError, match=r"^query failed: no such table"):
            store.engine.rows("SELECT 1 FROM no_such_table")
    finally:
        store.close()
