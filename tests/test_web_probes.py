"""The operations page's view outside the database: the depth of each IMAP mailbox (a real
dovecot) and the age of the cached certificate revocation lists (``[revocation]``)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.inbox.imap.config import MailboxConfig
from gateway.security.revocation.crl import CrlCache
from gateway.security.revocation.issuers import Issuers
from gateway.web.probes import MailboxProbe
from tests.revocation_pki import RevocationPki
from tests.support.dovecot import MISSING_REASON, DovecotServer, find_dovecot
from tests.support.web import Console, log_in

pytestmark = pytest.mark.integration

USERS = {"claims": "s3cret-claims", "other": "s3cret-other"}


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    if find_dovecot() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have dovecot installed: {MISSING_REASON}")
        pytest.skip(MISSING_REASON)
    server = DovecotServer(USERS)
    server.start()
    try:
        yield server
    finally:
        server.close()


def mailbox_table(name: str, port: int, user: str, password_file: Path) -> str:
    return (
        f'[[imap.mailboxes]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\n'
        f'security = "none"\nuser = "{user}"\npassword_file = "{password_file}"\n'
    )


def overview(web: Console) -> str:
    with httpx.Client(base_url=web.base, follow_redirects=False, timeout=60) as http:
        assert log_in(http, "dag").status_code == 303
        page = http.get("/drift")
        assert page.status_code == 200
        return page.text


def test_the_overview_shows_each_mailbox_depth(
    start_console: Callable[..., AbstractContextManager[Console]],
    dovecot: DovecotServer,
    tmp_path: Path,
) -> None:
    good = tmp_path / "claims.pw"
    good.write_text(USERS["claims"] + "\n", encoding="utf-8")
    wrong = tmp_path / "other.pw"
    wrong.write_text("not the password\n", encoding="utf-8")
    dovecot.append_many("claims", [b"Subject: a\r\n\r\nx\r\n"] * 3)
    mailboxes = (
        "[imap]\n"
        + mailbox_table("krav", dovecot.port, "claims", good)
        + mailbox_table("feil", dovecot.port, "other", wrong)
    )
    with start_console(config_extra=mailboxes) as web:
        page = overview(web)
        krav = re.search(r'id="imap-krav">krav: <strong>(\d+)</strong>', page)
        assert krav is not None and krav.group(1) == "3", page
        assert re.search(r'id="imap-feil">feil: <span class="tag bad">innlogging avvist', page)
        assert f"claims@127.0.0.1:{dovecot.port}/INBOX" in page
        # STATUS neither takes nor flags anything: the mails are all still there.
        assert len(dovecot.list_uids("claims")) == 3


def test_a_mailbox_that_does_not_answer_is_shown_so_and_depths_are_cached(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    password = tmp_path / "claims.pw"
    password.write_text(USERS["claims"], encoding="utf-8")
    mailbox = MailboxConfig(
        name="krav",
        host="127.0.0.1",
        port=dovecot.port,
        security="none",
        user="claims",
        password_file=password,
        password_env=None,
    )
    now = [0.0]
    probe = MailboxProbe([mailbox], clock=lambda: now[0])
    (depth,) = asyncio.run(probe.depths())
    assert depth.messages == 0 and depth.problem is None
    dovecot.append("claims", b"Subject: b\r\n\r\ny\r\n")
    assert asyncio.run(probe.depths())[0].messages == 0  # cached
    now[0] += 31
    assert asyncio.run(probe.depths())[0].messages == 1
    dovecot.stop()
    now[0] += 31
    (gone,) = asyncio.run(probe.depths())
    assert gone.messages is None and gone.problem is not None
    assert gone.problem.startswith("ikke tilgjengelig") or gone.problem == "svarer ikke"


def test_without_revocation_the_overview_says_it_is_not_configured(web: Console) -> None:
    page = overview(web)
    assert re.search(r'id="crl-status">Sperrelistekontroll er ikke satt opp', page)
    assert "IMAP" not in page  # no mailboxes configured, none shown


def test_the_overview_shows_each_crl_with_its_age_and_a_stale_one_as_a_failure(
    start_console: Callable[..., AbstractContextManager[Console]], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    pki = RevocationPki.create("http://127.0.0.1:1", now=now)
    issuers = pki.write_issuers(tmp_path / "issuers")
    cache = CrlCache(tmp_path / "crl", Issuers.load(issuers))
    fresh = cache.store(pki.crl_url, pki.crl(), now=now)
    old = now - timedelta(hours=3, minutes=10)
    crl_file = next((tmp_path / "crl").glob("*.crl"))
    os.utime(crl_file, (old.timestamp(), old.timestamp()))  # fetched 3 h 10 min ago
    stale_url = "http://127.0.0.1:1/crl/stale.crl"
    cache.store(
        stale_url,
        pki.crl(this_update=now - timedelta(days=2), next_update=now - timedelta(days=1)),
        now=now,
    )
    (tmp_path / "partners").mkdir()
    section = (
        f'[partners]\ndirectory = "{tmp_path / "partners"}"\n'
        f'[revocation]\ncache_dir = "{tmp_path / "crl"}"\nissuers_dir = "{issuers}"\n'
    )
    assert fresh.url == pki.crl_url
    with start_console(config_extra=section) as web:
        page = overview(web)
    assert re.search(r'id="crl-status"><span class="tag bad">feil</span>', page), page
    rows = re.findall(r"<tr><td>(http://[^<]+)</td>.*?</tr>", page, flags=re.S)
    assert sorted(rows) == sorted([pki.crl_url, stale_url])
    fresh_row = page[page.index(f"<tr><td>{pki.crl_url}") :].split("</tr>")[0]
    assert '<td class="crl-age">3 t 10 min</td>' in fresh_row
    assert '<span class="tag ok">fersk</span>' in fresh_row
    stale_row = page[page.index(f"<tr><td>{stale_url}") :].split("</tr>")[0]
    assert '<span class="tag bad">utdatert</span>' in stale_row and "stale" in stale_row
