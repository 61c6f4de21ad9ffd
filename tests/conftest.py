"""Shared test fixtures.

The official standards (XSDs and samples) live outside the project in ``../shared/standards``:
CI has them, a user's machine may not. Tests that need them take the ``standards`` fixture, which
skips with a clear reason where they are absent. ``GATEWAY_STANDARDS_DIR`` overrides the path.

The claims store runs on SQLite and on PostgreSQL: the ``store`` fixture (and ``database``, for
tests that open engines themselves) is parametrized over both. The PostgreSQL cases are marked
``postgres`` and ``integration``; they need the server binaries (``make deps``) and skip with
the reason where those are absent, except in CI, where they fail. One server runs per session
(``postgres_server``) with one schema for the tests, emptied before each test (``database``
gives a URL whose ``search_path`` is that schema).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gateway.config import IdentityConfig
from gateway.pipeline import Pipeline
from gateway.practices.legacy import legacy_register
from gateway.practices.live import PracticeSource
from gateway.practices.model import EMPTY_REGISTER
from gateway.receipts.keys import generate_dev_credentials
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.security.xmldsig import Signer
from gateway.store import Database, Store
from gateway.tariffs.loading import BUNDLED_TARIFFS, load_book_from_dir
from gateway.tariffs.model import EMPTY_BOOK, TariffBook
from gateway.validation.catalog import SchemaCatalog
from tests.support.postgres import MISSING_REASON, PostgresServer, find_bin

if TYPE_CHECKING:
    from tests.support.web import Console

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STANDARDS_DIR = Path(
    os.environ.get("GATEWAY_STANDARDS_DIR", PROJECT_ROOT.parent / "shared" / "standards")
)
FIXTURES_DIR = PROJECT_ROOT / "fixtures"


@pytest.fixture(scope="session")
def standards() -> Path:
    """The directory of official standards; skips the test where it does not exist."""
    if not (STANDARDS_DIR / "SOURCES.md").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the official standards at {STANDARDS_DIR}")
        pytest.skip(
            f"official standards not found at {STANDARDS_DIR} "
            "(set GATEWAY_STANDARDS_DIR to a checkout of shared/standards to run this test)"
        )
    return STANDARDS_DIR


# --- a pipeline on a temporary store, with a development signing key --------------------------


IDENTITY = IdentityConfig(
    name="HELFO test",
    her_id="79768",
    enh_id="889640782",
    ebxml_role="KontrollUtbetaler",
    mail_address="gateway@kuhr.test",
)


@pytest.fixture(scope="session")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A development key and certificate, made once per test session."""
    directory = tmp_path_factory.mktemp("keys")
    key, cert = directory / "key.pem", directory / "cert.pem"
    generate_dev_credentials(key, cert, common_name="HELFO test", organisation="HELFO test")
    return key, cert


@pytest.fixture(scope="session")
def signer(credentials: tuple[Path, Path]) -> Signer:
    return Signer.from_files(*credentials)


@pytest.fixture(scope="session")
def catalog() -> SchemaCatalog:
    return SchemaCatalog.default()


# --- the claims database, on each engine ---------------------------------------------------------

#: The database and schema the PostgreSQL tests run in.
PG_DATABASE = "gateway_tests"
PG_SCHEMA = "claims"

#: The engines the store tests run on.
ENGINES = (
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql", id="postgresql", marks=(pytest.mark.postgres, pytest.mark.integration)
    ),
)


def require_postgres() -> None:
    """Skip (fail in CI) where the PostgreSQL server binaries are missing."""
    if find_bin() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {MISSING_REASON}")
        pytest.skip(MISSING_REASON)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, with the tests' database made."""
    require_postgres()
    with PostgresServer() as server:
        server.create_database(PG_DATABASE)
        server.create_schema(PG_DATABASE, PG_SCHEMA)
        yield server


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A new, empty claims database on each engine (a SQLite file; a PostgreSQL database)."""
    if request.param == "sqlite":
        return Database(path=tmp_path / "gateway.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    server.empty_schema(PG_DATABASE, PG_SCHEMA)
    return Database(url=server.schema_url(PG_DATABASE, PG_SCHEMA))


def database_table(store: Store) -> str:
    """The ``[database]`` table of a config file for the store's database."""
    assert store.database is not None
    if store.database.url is not None:
        return f'[database]\nurl = "{store.database.url}"'
    return f'[database]\npath = "{store.database.path}"'


@pytest.fixture
def store(database: Database) -> Iterator[Store]:
    s = Store(database)
    yield s
    s.close()


FIXED_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def make_pipeline(
    store: Store, catalog: SchemaCatalog, signer: Signer
) -> Callable[..., Pipeline]:
    """Build a pipeline on the test store; ``now`` fixes the clock (default FIXED_NOW).
    Without ``tariffs`` and a register only the rules that need neither run. ``practitioners``
    (sender HER id -> practitioner type) is a register of those senders as the old config
    would convert (``gateway.practices.legacy``: agreements from 2000 on); ``practices`` a
    register of its own."""

    def factory(
        now: datetime = FIXED_NOW,
        *,
        tariffs: TariffBook = EMPTY_BOOK,
        practitioners: Mapping[str, str] | None = None,
        practices: PracticeSource | None = None,
    ) -> Pipeline:
        if practices is None:
            practices = legacy_register(practitioners) if practitioners else EMPTY_REGISTER
        return Pipeline(
            identity=IDENTITY,
            store=store,
            catalog=catalog,
            signer=signer,
            engine=RuleEngine(RULES),
            max_message_bytes=10 * 1024 * 1024,
            clock=lambda: now,
            tariffs=tariffs,
            practices=practices,
        )

    return factory


@pytest.fixture(scope="session")
def bundled_tariffs() -> TariffBook:
    """The tariff data shipped in fixtures/tariffs (what `make run` imports)."""
    return load_book_from_dir(BUNDLED_TARIFFS)


# --- the web console on a seeded store (tests/test_web_*.py) ----------------------------------


@pytest.fixture
def start_console(
    tmp_path: Path,
    make_pipeline: Callable[..., Pipeline],
    bundled_tariffs: TariffBook,
    store: Store,
    credentials: tuple[Path, Path],
) -> Callable[..., AbstractContextManager[Console]]:
    """Starts ``tests.support.web.console`` on the test store, seeded through a pipeline with
    the bundled tariffs; keyword arguments (``web_extra``, ``api_extra``, ``config_extra``) go
    to ``console``."""
    from tests.support import web  # the web stack only for the tests that start a console

    pipeline = make_pipeline(tariffs=bundled_tariffs, practitioners=web.PRACTITIONERS)
    return functools.partial(web.console, tmp_path, pipeline, store, credentials)


@pytest.fixture
def web(start_console: Callable[..., AbstractContextManager[Console]]) -> Iterator[Console]:
    """A running console with its default configuration."""
    with start_console() as running:
        yield running
