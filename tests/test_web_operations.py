"""Operations, statistics and rebehandling in the console, against a real server: dead letters
requeued and discarded (as ``gateway outbox``), messages with their replies decoded, the
overview, payout, the statistics export in every format, replay preview and apply, the audit
log."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from gateway.stats.formats import FORMATS
from tests.support.web import Console, csrf_of, log_in

pytestmark = pytest.mark.integration



@contextmanager
def session(web: Console, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web.base, follow_redirects=False, timeout=60) as http:
        assert log_in(http, user).status_code == 303
        yield http


def finish(http: httpx.Client, started: httpx.Response) -> str:
    """Follow a job's progress page until it sends us to the result; return that path."""
    assert started.status_code == 303, started.text
    job_path = started.headers["location"]
    assert job_path.startswith("/jobber/")
    for _ in range(600):
        page = http.get(job_path)
        if page.status_code == 303:
            return page.headers["location"]
        assert page.status_code == 200
        assert 'http-equiv="refresh"' in page.text and "<progress" in page.text
        time.sleep(0.1)
    raise AssertionError("the job did not finish")


def test_requeue_and_discard_dead_letters(web: Console) -> None:
    store = web.data.store
    reply_id = web.seeded.dead_reply_id
    with session(web, "dag") as http:
        page = http.get("/drift/dodbrev").text
        assert f'value="{reply_id}"' in page and "550 5.1.1" in page
        done = http.post(
            "/drift/dodbrev/send-igjen", data={"csrf": csrf_of(page), "svar": str(reply_id)}
        )
        assert done.status_code == 303
        assert "satt i kø" in http.get(done.headers["location"]).text
        reply = store.outbox.reply(reply_id)
        assert reply is not None and reply.state == "pending"
        assert reply.last_error is not None and reply.last_error.startswith("requeued by dag")
        store.outbox.mark_dead(reply_id, "550 again")
        page = http.get("/drift/dodbrev").text
        refused = http.post(
            "/drift/dodbrev/forkast", data={"csrf": csrf_of(page), "svar": str(reply_id)}
        )
        assert refused.status_code == 400
        http.post(
            "/drift/dodbrev/forkast",
            data={"csrf": csrf_of(page), "svar": str(reply_id), "begrunnelse": "feil adresse"},
        )
    reply = store.outbox.reply(reply_id)
    assert reply is not None and reply.state == "discarded"
    assert "discarded by dag" in (reply.last_error or "")
    actions = [e.action for e in web.data.accounts.audit_entries(actor="dag")]
    assert actions[:2] == ["discard", "requeue"]


def test_messages_show_replies_decoded(web: Console) -> None:
    bill = web.data.store.casework.bill(web.seeded.rejected_bill_id)
    assert bill is not None
    with session(web, "dag") as http:
        listing = http.get("/drift/meldinger", params={"fra": "2000-01-01T00:00"}).text
        assert f'/drift/meldinger/{bill.received_id}"' in listing
        page = http.get(f"/drift/meldinger/{bill.received_id}").text
        assert "AppRec status 3 (OK, feil i delmelding): 1 feil – 766" in page
        assert "ebXML Acknowledgment for" in page and "ebXML-kvittering" in page
        reply_id = re.findall(r'/drift/svar/(\d+)"', page)[0]
        reply = http.get(f"/drift/svar/{reply_id}").text
        assert "&lt;" in reply  # XML shown as text, not base64
        assert "Content-Transfer-Encoding" not in reply


def test_overview_and_payout(web: Console) -> None:
    with session(web, "rita") as http:
        overview = http.get("/drift").text
        assert 'id="dode-brev">1<' in overview
        assert "Signering (AppRec)" in overview and "dager" in overview
        assert "2026-11-23T1600" in overview
        payout = http.get("/drift/utbetaling").text
        assert "Forhåndsvisning av neste kjøring" in payout
        assert "2026-11-23T1600" in payout


def test_statistics_export_in_every_format(web: Console) -> None:
    with session(web, "dag") as http:
        page = http.get("/statistikk").text
        bad = http.post("/statistikk", data={"csrf": csrf_of(page), "maal": "kontakter",
                                             "periode": "2026-10"})
        assert bad.status_code == 400 and "dimensjon" in bad.text
        started = http.post(
            "/statistikk",
            data={"csrf": csrf_of(page), "maal": "kontakter", "etter": "kjonn",
                  "periode": "2026-10"},
        )
        result = finish(http, started)
        shown = http.get(result).text
        assert "<table>" in shown and "<img" in shown
        for fmt in FORMATS:
            answer = http.get(f"{result}/fil.{fmt}")
            assert answer.status_code == 200, fmt
            assert answer.headers["content-disposition"].startswith("attachment;")
            assert answer.content, fmt
        assert http.get(f"{result}/fil.png", params={"vis": "1"}).content.startswith(b"\x89PNG")
        assert http.get(f"{result}/fil.csv").content.startswith(b"\xef\xbb\xbf")
    exports = [e for e in web.data.accounts.audit_entries(actor="dag")
               if e.action == "stats_export"]
    assert len(exports) == len(FORMATS) + 1  # the csv twice
    with session(web, "sara") as other:
        assert other.get(result).status_code == 404  # a job is its owner's


def test_statistics_by_the_register_dimensions(web: Console) -> None:
    with session(web, "dag") as http:
        page = http.get("/statistikk").text
        for dimension in ("praksistype", "fagomrade", "praksiskommune", "kontakttype"):
            assert f'value="{dimension}"' in page
        started = http.post(
            "/statistikk",
            data={"csrf": csrf_of(page), "maal": "kontakter", "periode": "2026-10",
                  "etter": ["praksistype", "fagomrade", "praksiskommune", "kommune"]},
        )
        result = finish(http, started)
        assert "<table>" in http.get(result).text
        csv = http.get(f"{result}/fil.csv").content.decode("utf-8-sig")
        header = csv.splitlines()[0].split(";")
        # in the form's order of the dimensions
        assert header[1:5] == ["fagomrade", "praksistype", "praksiskommune", "kommune"]
        assert len(csv.splitlines()) > 2


def test_replay_preview_then_apply(web: Console) -> None:
    store = web.data.store
    bill_id = web.seeded.bill_ids_b[0]
    # As if an older rule set had rejected this bill: the current rules approve it.
    with store.engine.transaction("test: an older decision") as tx:
        tx.execute("UPDATE bills SET status = 'avvist', approved_ore = 0, live = 0 WHERE id = ?",
                   (bill_id,))
    with session(web, "sara") as http:
        page = http.get("/rebehandling").text
        started = http.post("/rebehandling", data={"csrf": csrf_of(page), "fra": "2026-10-01",
                                                   "datofelt": "behandling"})
        preview = http.get(finish(http, started))
        assert "forhåndsvisning" in preview.text.lower()
        assert f"/regninger/{bill_id}\"" in preview.text
        assert store.casework.overrides_for(bill_id) == []
        applied = http.post(preview.url.path + "/lagre", data={"csrf": csrf_of(preview.text)})
        result = http.get(finish(http, applied)).text
        assert "Rebehandling lagret" in result
    records = store.casework.overrides_for(bill_id)
    assert [(o.kind, o.by, o.decision) for o in records] == [
        ("rebehandling", "rebehandling:sara", "godkjent")
    ]
    actions = [e.action for e in web.data.accounts.audit_entries(actor="sara")]
    assert actions[:2] == ["replay_apply", "replay_preview"]


def test_audit_log_shows_who_did_what(web: Console) -> None:
    with session(web, "sara"):
        pass
    with session(web, "rita") as http:
        page = http.get("/revisjon").text
        assert "sara" in page and "login" in page
        assert "user_add" in page
