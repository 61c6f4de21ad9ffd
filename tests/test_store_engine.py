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


def test_only_the_postgresql_engine_imports_psycopg() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        drivers = {n for n in _imports(path) if n.split(".")[0] in ("psycopg", "psycopg_pool")}
        if path != PACKAGE / "store" / "postgres.py":
            assert drivers == set(), path


def _reply(n: int) -> ReplyRecord:
    return ReplyRecord("apprec", "HER:1", f"r{n}.eml", b"body", ebxml_message_id=f"m{n}")


def test_a_driver_error_rolls_back_and_becomes_a_storage_error(store: Store) -> None:
    unique = r"(UNIQUE constraint failed|duplicate key value violates unique constraint)"
    with (
        pytest.raises(StorageError, match=rf"^could not queue: {unique}") as info,
        store.engine.transaction("could not queue") as tx,
    ):
        write_replies(tx, [_reply(1)], received_id=None)
        write_replies(tx, [_reply(1)], received_id=None)  # the same file name again
    assert "r1.eml" not in str(info.value)  # never a row's values (they may be national ids)
    assert store.outbox.list_replies() == []


def test_other_errors_roll_back_and_pass_unchanged(store: Store) -> None:
    with pytest.raises(KeyError), store.engine.transaction("never said") as tx:
        write_replies(tx, [_reply(1)], received_id=None)
        raise KeyError("boom")
    assert store.outbox.list_replies() == []
    with store.engine.transaction("could not queue") as tx:
        ids = write_replies(tx, [_reply(1), _reply(2)], received_id=None)
    assert [r.id for r in store.outbox.list_replies()] == ids
    assert ids[1] == ids[0] + 1


def test_a_failed_read_is_a_storage_error(store: Store) -> None:
    missing = r"(no such table|relation \"no_such_table\" does not exist)"
    with pytest.raises(StorageError, match=rf"^query failed: {missing}"):
        store.engine.rows("SELECT 1 FROM no_such_table")


def test_sums_and_flags_read_the_same_on_both_engines(store: Store) -> None:
    ids = write_and_sum(store)
    assert store.engine.rows(
        "SELECT SUM(id), COUNT(*), MAX(length(body)) FROM replies WHERE id IN (?, ?)", ids
    ) == [(sum(ids), 2, 4)]
    value = store.engine.one("SELECT SUM(id) FROM replies")
    assert value is not None and type(value[0]) is int  # a BIGINT sum is numeric on PostgreSQL


def write_and_sum(store: Store) -> list[int]:
    with store.engine.transaction("could not queue") as tx:
        return write_replies(tx, [_reply(1), _reply(2)], received_id=None)
