"""Test support for the console and the status API: a claims database with something in it
(bills in manual control, rejected bills, two senders, a dead letter, a payout run), console
users of every role, signed tokens for senders, and a real uvicorn server on a free port.

Used by ``tests/test_web_*.py``. It needs httpx (a dev dependency), so it lives with the tests,
not in the package.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.adapters import Adapters, load_config
from gateway.claims.model import BehandlerKrav, Enkeltregning, Takst
from gateway.config import Config
from gateway.payout import ledger
from gateway.pipeline import Pipeline
from gateway.store import Database, Store
from gateway.tariffs.importing import import_files
from gateway.tariffs.loading import BUNDLED_TARIFFS, FILE_NAMES
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from gateway.users.accounts import Accounts
from gateway.users.passwords import use_low_cost_for_tests
from gateway.users.roles import Role
from gateway.web.app import create_app
from gateway.web.config import WebConfig
from gateway.web.data import ConsoleData
from gateway.web.server import policy_of, uvicorn_config
from tests.support.net import free_port

SENDER_A = "8141253"
SENDER_B = "8142253"
#: Every console test user has this password.
PASSWORD = "korrekt-hest-batteri-stift"
USERS: dict[str, tuple[Role, ...]] = {
    "sara": (Role.SAKSBEHANDLER,),
    "dag": (Role.DRIFT,),
    "rita": (Role.REVISOR,),
}
ISSUER = "https://helseid.test"
AUDIENCE = "gateway-status-api"
KID = "test-key-1"


@dataclass(frozen=True, slots=True)
class Seeded:
    """What ``seed`` stored."""

    manual_bill_ids: tuple[int, ...]  # sender A's bills in manual control
    other_manual_bill_ids: tuple[int, ...]  # sender B's
    bill_ids_a: tuple[int, ...]
    bill_ids_b: tuple[int, ...]
    msg_ids_a: tuple[str, ...]
    msg_ids_b: tuple[str, ...]
    guids_a: tuple[str, ...]
    guids_b: tuple[str, ...]
    patient_ids: tuple[str, ...]
    dead_reply_id: int
    rejected_bill_id: int  # sender A, rejected as dated in the future (766)


def import_bundled_tariffs(store: Store) -> None:
    import_files(store.tariff_imports, [BUNDLED_TARIFFS / name for name in FILE_NAMES.values()])


def _midnight_1bd(bill: Enkeltregning) -> Enkeltregning:
    """A bill a rule sends to manual control: takst 1bd registered at 23:59 (TAR-012)."""
    at = bill.dato_tid.replace(hour=23, minute=59, second=0)
    takst = Takst("1bd", Decimal("72.00"), 1)
    behandling = dataclasses.replace(
        bill.behandling, takster=(takst,), sum_refusjon=takst.verdi, kode_egenandel=None
    )
    return dataclasses.replace(bill, dato_tid=at, behandling=behandling)


def _message(sender: str, seed: int, start: datetime,
             shape: Sequence[str]) -> tuple[Any, BehandlerKrav]:
    head, krav = make_claim(
        rng=random.Random(seed), practitioner="lege", bills=len(shape),
        sender=default_sender(sender), receiver=default_receiver(), start=start,
    )
    bills = list(krav.regninger)
    for i, kind in enumerate(shape):
        if kind == "manual":
            bills[i] = _midnight_1bd(bills[i])
        elif kind == "future":
            bills[i] = dataclasses.replace(bills[i], dato_tid=datetime(2027, 6, 1, 9, 0))
    krav = dataclasses.replace(
        krav, regninger=tuple(bills), antall_regninger=len(bills),
        sum_krav_samlet=sum((b.behandling.sum_refusjon for b in bills), Decimal("0.00")),
    )
    return head, krav


def seed(pipeline: Pipeline, store: Store) -> Seeded:
    """Send claims from two senders through ``pipeline`` (built with the bundled tariffs and
    both senders registered as ``lege``), kill one reply, record a payout run."""
    start = datetime(2026, 10, 5, 8, 30)
    plan = [
        (SENDER_A, 11, start, ("ok", "manual", "ok")),
        (SENDER_A, 12, start + timedelta(days=2), ("manual", "future")),
        (SENDER_B, 21, start + timedelta(days=1), ("ok", "manual")),
    ]
    msg_ids: dict[str, list[str]] = {SENDER_A: [], SENDER_B: []}
    for number, (sender, seed_no, when, shape) in enumerate(plan):
        head, krav = _message(sender, seed_no, when, shape)
        raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(seed_no))
        pipeline.handle(raw, source="spool", source_ref=f"web-{number}",
                        source_name=f"web-{number}.msg")
        msg_ids[sender].append(head.msg_id)
    rows = store.engine.rows(
        "SELECT b.id, b.sender_her, b.manual, b.guid, b.patient_id, b.status FROM bills b "
        "ORDER BY b.id"
    )
    ids: dict[str, list[int]] = {SENDER_A: [], SENDER_B: []}
    manual: dict[str, list[int]] = {SENDER_A: [], SENDER_B: []}
    guids: dict[str, list[str]] = {SENDER_A: [], SENDER_B: []}
    rejected = 0
    for bill_id, sender, is_manual, guid, _pid, status in rows:
        ids[sender].append(int(bill_id))
        guids[sender].append(str(guid))
        if is_manual:
            manual[sender].append(int(bill_id))
        if status == "avvist" and sender == SENDER_A:
            rejected = int(bill_id)
    pending = store.outbox.pending_replies()
    store.outbox.mark_dead(pending[0].id, "550 5.1.1 mailbox unavailable")
    ledger.run(store.engine, "2026-11-23T1600")
    return Seeded(
        manual_bill_ids=tuple(manual[SENDER_A]),
        other_manual_bill_ids=tuple(manual[SENDER_B]),
        bill_ids_a=tuple(ids[SENDER_A]),
        bill_ids_b=tuple(ids[SENDER_B]),
        msg_ids_a=tuple(msg_ids[SENDER_A]),
        msg_ids_b=tuple(msg_ids[SENDER_B]),
        guids_a=tuple(guids[SENDER_A]),
        guids_b=tuple(guids[SENDER_B]),
        patient_ids=tuple(str(r[4]) for r in rows),
        dead_reply_id=pending[0].id,
        rejected_bill_id=rejected,
    )


def add_users(accounts: Accounts) -> None:
    """``sara`` (saksbehandler), ``dag`` (drift), ``rita`` (revisor), password ``PASSWORD``."""
    for name, roles in USERS.items():
        accounts.add(name, PASSWORD, roles, display_name=name.capitalize(), by="test")


# --- senders' tokens -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _issuer_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True, slots=True)
class Issuer:
    """A HelseID stand-in: an RSA key, its JWKS file, and tokens signed with it."""

    key: rsa.RSAPrivateKey
    jwks_file: Path

    @classmethod
    def create(cls, directory: Path) -> Issuer:
        key = _issuer_key()
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        public.update(kid=KID, use="sig", alg="RS256")
        path = directory / "jwks.json"
        path.write_text(json.dumps({"keys": [public]}), encoding="utf-8")
        return cls(key, path)

    def token(self, sender: str, *, issuer: str = ISSUER, audience: str = AUDIENCE,
              lifetime: timedelta = timedelta(minutes=5), key: Any = None,
              claims: dict[str, Any] | None = None) -> str:
        now = datetime.now(UTC)
        payload = {"iss": issuer, "aud": audience, "iat": now, "exp": now + lifetime,
                   "client_id": sender, **(claims or {})}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": KID})


def web_section(issuer: Issuer | None, *, extra: str = "", api_extra: str = "") -> str:
    """A ``[web]`` config section for tests: plain http on localhost, tokens from ``issuer``."""
    text = "[web]\ncookie_secure = false\n" + extra + "[web.api]\n"
    if issuer is not None:
        text += (
            f'jwt_issuer = "{ISSUER}"\njwt_audience = "{AUDIENCE}"\n'
            f'jwks_file = "{issuer.jwks_file}"\n'
        )
    return text + api_extra


# --- a real server -------------------------------------------------------------------------


@contextmanager
def running_server(
    app: Any, web: WebConfig, *, timeout: float = 15.0, port: int | None = None
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on ``port`` (a free one by default) in a thread; yield its
    base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn_config(app, web, port=port))
    thread = threading.Thread(target=server.run, name="web-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test web server did not start")
        time.sleep(0.02)
    scheme = "https" if web.tls_cert_file else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}{web.root_path}"
    finally:
        server.should_exit = True
        thread.join(timeout)


# --- a whole console ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Console:
    """A running console on a seeded database."""

    base: str
    config_path: Path
    seeded: Seeded
    data: ConsoleData
    issuer: Issuer


def write_config(directory: Path, database: Database, credentials: tuple[Path, Path],
                 web: str, *, extra: str = "") -> Path:
    key, cert = credentials
    where = f'url = "{database.url}"' if database.url else f'path = "{database.path}"'
    path = directory / "gateway.toml"
    path.write_text(
        f"""
[identity]
name = "HELFO test"
her_id = "79768"
[database]
{where}
[spool]
directory = "{directory / 'spool'}"
[outbox]
directory = "{directory / 'outbox'}"
[signing]
key_file = "{key}"
cert_file = "{cert}"
[practitioners]
"{SENDER_A}" = "lege"
"{SENDER_B}" = "lege"
{extra}
{web}
""",
        encoding="utf-8",
    )
    return path


def store_database(store: Store) -> Database:
    """Where ``store`` is (it was opened on a file or a configured database)."""
    assert store.database is not None
    return store.database


@contextmanager
def console(
    directory: Path,
    pipeline: Pipeline,
    store: Store,
    credentials: tuple[Path, Path],
    *,
    web_extra: str = "",
    api_extra: str = "",
    config_extra: str = "",
    port: int | None = None,
) -> Iterator[Console]:
    """Seed ``store`` through ``pipeline`` (built with the bundled tariffs and
    ``PRACTITIONERS``), add the test users and serve the console on it (on ``port``, when the
    config must name it: an OIDC callback)."""
    use_low_cost_for_tests()
    import_bundled_tariffs(store)
    seeded = seed(pipeline, store)
    issuer = Issuer.create(directory)
    config_path = write_config(
        directory, store_database(store), credentials,
        web_section(issuer, extra=web_extra, api_extra=api_extra), extra=config_extra,
    )
    config: Config = load_config(config_path)
    adapters = Adapters.of(config)
    data = ConsoleData(config, store, policy_of(adapters.web))
    add_users(data.accounts)
    app = create_app(config, data, adapters=adapters)
    with running_server(app, adapters.web, port=port) as base:
        yield Console(base, config_path, seeded, data, issuer)


#: The practitioner registry ``console`` expects its pipeline to be built with.
PRACTITIONERS = {SENDER_A: "lege", SENDER_B: "lege"}


# --- a browser-less user -----------------------------------------------------------------------


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on ``page``."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    if found is None:
        raise AssertionError("no CSRF field on the page")
    return found.group(1)


def log_in(http: httpx.Client, user: str, password: str = PASSWORD) -> httpx.Response:
    """Log ``user`` in on ``http`` (its cookies keep the session)."""
    page = http.get("/logg-inn")
    return http.post(
        "/logg-inn",
        data={"csrf": csrf_of(page.text), "brukernavn": user, "passord": password, "neste": "/"},
    )
