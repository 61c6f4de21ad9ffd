"""Every role against every page and action: what a role may not see is refused (and shows no
data), what it may not do changes nothing, and no page shows a national id to anyone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.support.web import Console, csrf_of, log_in

pytestmark = pytest.mark.integration

CASEWORK = {"sara", "rita"}
OPERATIONS = {"dag", "rita"}
EVERYONE = {"sara", "dag", "rita"}



def pages(web: Console) -> dict[str, set[str]]:
    """Page -> the users who may see it."""
    seeded = web.seeded
    received = web.data.store.casework.bill(seeded.rejected_bill_id)
    assert received is not None
    return {
        "/arbeidsliste": CASEWORK,
        "/sok": CASEWORK,
        f"/regninger/{seeded.rejected_bill_id}": CASEWORK,
        f"/regninger/{seeded.manual_bill_ids[0]}": CASEWORK,
        "/rebehandling": {"sara"},
        "/drift": OPERATIONS,
        "/drift/meldinger": OPERATIONS,
        f"/drift/meldinger/{received.received_id}": OPERATIONS,
        f"/drift/svar/{seeded.dead_reply_id}": OPERATIONS,
        "/drift/dodbrev": OPERATIONS,
        "/drift/utbetaling": OPERATIONS,
        "/statistikk": EVERYONE,
        "/revisjon": {"rita"},
    }


@contextmanager
def session(web: Console, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web.base, follow_redirects=False, timeout=30) as http:
        assert log_in(http, user).status_code == 303
        yield http


def test_each_role_sees_exactly_its_pages_and_no_national_id(web: Console) -> None:
    guid = web.data.store.casework.bill(web.seeded.rejected_bill_id).guid  # type: ignore[union-attr]
    for user in sorted(EVERYONE):
        with session(web, user) as http:
            for path, allowed in pages(web).items():
                answer = http.get(path)
                expected = 200 if user in allowed else 403
                assert answer.status_code == expected, (user, path, answer.status_code)
                for pid in web.seeded.patient_ids:
                    assert pid not in answer.text, (user, path)
                if expected == 403:
                    assert guid not in answer.text and "Regning " not in answer.text
    with httpx.Client(base_url=web.base, follow_redirects=False, timeout=30) as anonymous:
        for path in pages(web):
            answer = anonymous.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/logg-inn")


def test_menus_offer_only_what_the_role_may_use(web: Console) -> None:
    for user, present, absent in (
        ("sara", ["/arbeidsliste", "/rebehandling", "/statistikk"], ["/drift", "/revisjon"]),
        ("dag", ["/drift", "/drift/dodbrev", "/statistikk"], ["/arbeidsliste", "/revisjon"]),
        ("rita", ["/arbeidsliste", "/drift", "/revisjon"], ["/rebehandling"]),
    ):
        with session(web, user) as http:
            menu = http.get("/statistikk").text.split("</nav>")[0]
            for path in present:
                assert f'href="{path}"' in menu, (user, path)
            for path in absent:
                assert f'href="{path}"' not in menu, (user, path)


def test_only_a_case_worker_overrides(web: Console) -> None:
    bill_id = web.seeded.manual_bill_ids[0]
    for user in ("dag", "rita"):
        with session(web, user) as http:
            token = csrf_of(http.get("/statistikk").text)
            answer = http.post(
                f"/regninger/{bill_id}/overstyr",
                data={"csrf": token, "vedtak": "godkjenn", "begrunnelse": "forsøk"},
            )
            assert answer.status_code == 403, user
    assert web.data.store.casework.overrides_for(bill_id) == []
    with session(web, "rita") as http:
        assert "Lagre overstyring" not in http.get(f"/regninger/{bill_id}").text


def test_only_an_operator_requeues_or_discards(web: Console) -> None:
    reply_id = web.seeded.dead_reply_id
    for user in ("sara", "rita"):
        with session(web, user) as http:
            token = csrf_of(http.get("/statistikk").text)
            for action in ("send-igjen", "forkast"):
                answer = http.post(
                    f"/drift/dodbrev/{action}",
                    data={"csrf": token, "svar": str(reply_id), "begrunnelse": "x"},
                )
                assert answer.status_code == 403, (user, action)
    assert [r.id for r in web.data.store.outbox.dead_letters()] == [reply_id]
    with session(web, "rita") as http:
        assert "Send valgte på nytt" not in http.get("/drift/dodbrev").text


def test_national_id_search_is_for_case_workers_only_and_audited(web: Console) -> None:
    pid = web.seeded.patient_ids[0]
    with session(web, "rita") as http:
        page = http.get("/sok").text
        assert 'name="fnr"' not in page
        refused = http.post("/sok", data={"csrf": csrf_of(page), "fnr": pid})
        assert refused.status_code == 403
        assert pid not in refused.text
    with session(web, "sara") as http:
        page = http.get("/sok").text
        assert 'name="fnr"' in page
        found = http.post("/sok", data={"csrf": csrf_of(page), "fnr": pid})
        assert found.status_code == 200
        assert pid not in found.text
        assert pid[:6] + "*****" in found.text
        assert len(re.findall(r'/regninger/(\d+)">', found.text)) >= 1
    actions = [e.action for e in web.data.accounts.audit_entries(actor="sara")]
    assert "search_national_id" in actions
    for entry in web.data.accounts.audit_entries():
        assert pid not in (entry.detail or "") and pid not in (entry.target or "")


def test_search_by_the_other_fields(web: Console) -> None:
    seeded = web.seeded
    bill = web.data.store.casework.bill(seeded.bill_ids_b[0])
    assert bill is not None
    with session(web, "rita") as http:
        token = csrf_of(http.get("/sok").text)
        for field, value in (
            ("guid", bill.guid),
            ("msgid", seeded.msg_ids_b[0]),
            ("avsender", bill.sender_her),
        ):
            found = http.post("/sok", data={"csrf": token, field: value}).text
            ids = {int(x) for x in re.findall(r'/regninger/(\d+)">', found)}
            assert bill.id in ids, field
        by_number = http.post(
            "/sok",
            data={"csrf": token, "regningsnr": bill.regning_nr, "avsender": bill.sender_her},
        ).text
        assert {int(x) for x in re.findall(r'/regninger/(\d+)">', by_number)} == {bill.id}
        day = bill.dato_tid.date().isoformat()
        period = http.post("/sok", data={"csrf": token, "fra": day, "til": day}).text
        assert bill.id in {int(x) for x in re.findall(r'/regninger/(\d+)">', period)}
