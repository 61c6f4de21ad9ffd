"""The web console against a real server: login, sessions, CSRF, throttling, the worklist, the
bill page and overrides (through the same code and audit as ``gateway claims override``)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from tests.support.web import PASSWORD, Console, csrf_of, log_in

pytestmark = pytest.mark.integration



def client(web: Console) -> httpx.Client:
    return httpx.Client(base_url=web.base, follow_redirects=False, timeout=30)


def test_pages_need_a_login(web: Console) -> None:
    with client(web) as http:
        answer = http.get("/arbeidsliste")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/logg-inn?neste=/arbeidsliste")
        assert log_in(http, "sara", "wrong password!").status_code == 401
        ok = log_in(http, "sara")
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert http.get("/arbeidsliste").status_code == 200


def test_security_headers_and_no_caching(web: Console) -> None:
    with client(web) as http:
        log_in(http, "sara")
        page = http.get("/arbeidsliste")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"


def test_login_without_the_forms_token_is_refused(web: Console) -> None:
    with client(web) as http:
        answer = http.post("/logg-inn", data={"brukernavn": "sara", "passord": PASSWORD})
        assert answer.status_code == 400
        assert "gateway_session" not in answer.headers.get("set-cookie", "")


def test_brute_force_is_throttled(web: Console) -> None:
    with client(web) as http:
        for _ in range(5):
            assert log_in(http, "dag", "not the password").status_code == 401
        throttled = log_in(http, "dag")  # the right password, too late
        assert throttled.status_code == 429
        assert "For mange mislykkede" in throttled.text
    entries = web.data.accounts.audit_entries(actor="dag")
    assert [e.action for e in entries][:2] == ["login_throttled", "login_failed"]


def test_sessions_expire_when_idle(web: Console) -> None:
    accounts = web.data.accounts
    with client(web) as http:
        log_in(http, "sara")
        assert http.get("/arbeidsliste").status_code == 200
        real = accounts.clock
        accounts.clock = lambda: real() + accounts.policy.idle + timedelta(seconds=1)
        try:
            assert http.get("/arbeidsliste").status_code == 303
        finally:
            accounts.clock = real


def test_logout_ends_the_session(web: Console) -> None:
    with client(web) as http:
        log_in(http, "sara")
        page = http.get("/arbeidsliste")
        assert http.post("/logg-ut", data={"csrf": "forged"}).status_code == 403
        assert http.post("/logg-ut", data={"csrf": csrf_of(page.text)}).status_code == 303
        assert http.get("/arbeidsliste").status_code == 303


def test_worklist_lists_manual_bills_oldest_first_and_filters(web: Console) -> None:
    seeded = web.seeded
    with client(web) as http:
        log_in(http, "sara")
        page = http.get("/arbeidsliste").text
        expected = list(seeded.manual_bill_ids + seeded.other_manual_bill_ids)
        shown = [int(x) for x in re.findall(r'/regninger/(\d+)">', page)]
        assert sorted(shown) == sorted(expected)
        # Oldest received first: sender A's first message, then B's, then A's second.
        assert shown[0] == seeded.manual_bill_ids[0]
        assert f'<div class="big" id="antall">{len(expected)}</div>' in page
        only_b = http.get("/arbeidsliste", params={"avsender": "8142253"}).text
        assert [int(x) for x in re.findall(r'/regninger/(\d+)">', only_b)] == list(
            seeded.other_manual_bill_ids
        )
        by_rule = http.get("/arbeidsliste", params={"regel": "TAR-012"}).text
        assert len(re.findall(r'/regninger/(\d+)">', by_rule)) == len(expected)


def test_bill_page_shows_rules_history_and_the_decoded_apprec(web: Console) -> None:
    bill_id = web.seeded.rejected_bill_id
    with client(web) as http:
        log_in(http, "sara")
        page = http.get(f"/regninger/{bill_id}").text
        assert "Regler kjørt nå" in page and "DATE-766" in page
        assert "AppRec status 3" in page  # decoded, readable
        assert "&lt;Status V=&#34;3&#34;" in page or "Status V=" in page
        assert "kode" not in page or "766" in page
        for pid in web.seeded.patient_ids:
            assert pid not in page


def test_override_with_reason_changes_the_status_and_is_audited(web: Console) -> None:
    bill_id = web.seeded.manual_bill_ids[0]
    with client(web) as http:
        log_in(http, "sara")
        page = http.get(f"/regninger/{bill_id}").text
        token = csrf_of(page)
        refused = http.post(
            f"/regninger/{bill_id}/overstyr",
            data={"csrf": token, "vedtak": "avvis", "begrunnelse": "  "},
        )
        assert refused.status_code == 400 and "begrunnelse" in refused.text
        done = http.post(
            f"/regninger/{bill_id}/overstyr",
            data={"csrf": token, "vedtak": "avvis", "begrunnelse": "Kontakten var ikke reell."},
        )
        assert done.status_code == 303
        after = http.get(done.headers["location"]).text
        assert 'id="gjeldende-status">avvist, 0,00 kr' in after
        assert "Kontakten var ikke reell." in after
        worklist = http.get("/arbeidsliste").text
        assert f"/regninger/{bill_id}\"" not in worklist
    overrides = web.data.store.casework.overrides_for(bill_id)
    assert [(o.by, o.decision, o.kind) for o in overrides] == [("sara", "avvist", "override")]
    assert web.data.accounts.audit_entries(actor="sara")[0].action == "override"


def test_override_without_csrf_token_is_refused(web: Console) -> None:
    bill_id = web.seeded.manual_bill_ids[0]
    with client(web) as http:
        log_in(http, "sara")
        answer = http.post(
            f"/regninger/{bill_id}/overstyr",
            data={"csrf": "x", "vedtak": "avvis", "begrunnelse": "forged"},
        )
        assert answer.status_code == 403
    assert web.data.store.casework.overrides_for(bill_id) == []
