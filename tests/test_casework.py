"""Case work: show a stored bill, override it, list/explain the rules, replay (rebehandling)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.casework import (
    CaseworkError,
    Environment,
    HistoryBefore,
    explain,
    override,
    replay,
    resolve_bill,
    rules_in_force,
)
from gateway.casework import cli as casework_cli
from gateway.casework.lookup import kroner, mask_national_id, parse_kroner
from gateway.casework.ruleset import family_of
from gateway.claims.model import BehandlerKrav, Enkeltregning, MsgHead
from gateway.pipeline import Pipeline
from gateway.records import CaseBill
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.store import Store
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from tests.conftest import database_table

START = datetime(2026, 10, 5, 8, 30)


# --- producing stored claims through the pipeline -------------------------------------------------


def claim(seed: int, bills: int = 2, start: datetime = START) -> tuple[MsgHead, BehandlerKrav]:
    return make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=bills,
        sender=default_sender(),
        receiver=default_receiver(),
        start=start,
    )


def send(pipeline: Pipeline, head: MsgHead, krav: BehandlerKrav, seed: int) -> None:
    payload = msghead_with_bkm(head, krav)
    raw = ebxml_message(payload, rng=random.Random(seed), compress=seed % 2 == 0)
    pipeline.handle(raw, source="spool", source_ref=f"ref-{seed}", source_name=f"{seed}.msg")


def with_bills(krav: BehandlerKrav, bills: list[Enkeltregning]) -> BehandlerKrav:
    return dataclasses.replace(
        krav,
        regninger=tuple(bills),
        antall_regninger=len(bills),
        sum_krav_samlet=sum((b.behandling.sum_refusjon for b in bills), Decimal("0.00")),
    )


def bill_of(store: Store, regning: Enkeltregning, *, credit: bool = False) -> CaseBill:
    for bill_id in store.casework.bill_ids(guid=regning.guid):
        bill = store.casework.bill(bill_id)
        assert bill is not None
        if bill.kreditering == credit:
            return bill
    raise AssertionError(f"bill {regning.regning_nr} not stored")


@dataclasses.dataclass
class Stored:
    """Two messages: one accepted (2 bills), one with a bill rejected as dated in the future."""

    ok: list[Enkeltregning]
    future: Enkeltregning
    partner: Enkeltregning  # approved, in the same message as the rejected one


@pytest.fixture
def stored(make_pipeline: Callable[..., Pipeline]) -> Stored:
    pipeline = make_pipeline()
    head, krav = claim(1)
    send(pipeline, head, krav, 1)
    head2, krav2 = claim(2, start=START + timedelta(days=1))
    bills = list(krav2.regninger)
    bills[1] = dataclasses.replace(bills[1], dato_tid=datetime(2027, 1, 1, 9, 0))
    send(pipeline, head2, with_bills(krav2, bills), 2)
    return Stored(ok=list(krav.regninger), future=bills[1], partner=bills[0])


# --- the CLI, without gateway.cli -----------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path, store: Store) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[identity]
name = "HELFO test"
her_id = "79768"
{database_table(store)}
[spool]
directory = "{tmp_path / "spool"}"
[outbox]
directory = "{tmp_path / "outbox"}"
[signing]
key_file = "{tmp_path / "key.pem"}"
cert_file = "{tmp_path / "cert.pem"}"
""",
        encoding="utf-8",
    )
    return path


def gateway(config: Path, *argv: str) -> int | None:
    parser = argparse.ArgumentParser(prog="gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    casework_cli.add_commands(sub)
    return casework_cli.run(parser.parse_args([*argv, "--config", str(config)]))


def test_run_leaves_other_commands_alone() -> None:
    assert casework_cli.run(argparse.Namespace(command="status")) is None


# --- claims show ----------------------------------------------------------------------------------


def test_bill_is_found_by_id_guid_and_her_regningnr(stored: Stored, store: Store) -> None:
    bill = bill_of(store, stored.future)
    assert resolve_bill(store, str(bill.id)).id == bill.id
    assert resolve_bill(store, bill.guid).id == bill.id
    assert resolve_bill(store, f"8141253:{bill.regning_nr}").id == bill.id
    assert resolve_bill(store, f"HER:8141253:{bill.regning_nr}").id == bill.id
    for unknown in ("999999", "no-such-guid", "8141253:nope", "a:b:c"):
        with pytest.raises(CaseworkError):
            resolve_bill(store, unknown)


def test_show_prints_the_bill_with_the_national_id_masked(
    stored: Stored, store: Store, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bill = bill_of(store, stored.future)
    fnr = stored.future.patient.id
    assert gateway(config_file, "claims", "show", str(bill.id)) == 0
    out = capsys.readouterr().out
    assert fnr not in out
    assert f"{fnr[:6]}*****" in out and "maskert" in out
    assert f"RegningNr:         {stored.future.regning_nr}" in out
    assert stored.future.guid in out
    assert "Vedtak:              avvist, godkjent 0,00 kr" in out
    assert "DATE-766@1  766  [avvis regning]" in out and "frem i tid" in out
    assert "fakta: dato_tid=2027-01-01 09:00" in out
    for takst in stored.future.behandling.takster:
        assert takst.kode in out
    assert f"Krevd refusjon:      {kroner(bill.sum_refusjon_ore)} kr" in out

    assert gateway(config_file, "claims", "show", bill.guid, "--json") == 0
    raw = capsys.readouterr().out
    assert fnr not in raw
    data = json.loads(raw)
    assert data["patient_id_masked"] == fnr[:6] + "*****"
    assert data["decision"]["status"] == "avvist"
    assert data["effective"] == {
        "status": "avvist",
        "approved": "0.00",
        "overridden": False,
        "override_id": None,
        "override_kind": None,
    }
    # The sender's practitioner type is not configured: TYPE-001 (manual control) fires too.
    assert [f["code"] for f in data["findings"]] == ["766", "UKJENT_BEHANDLERTYPE"]
    assert data["findings"][0]["facts"]["dato_tid"] == "2027-01-01 09:00"
    assert len([line for line in data["lines"] if line["kind"] == "takst"]) == len(
        stored.future.behandling.takster
    )


def test_show_of_an_unknown_bill_fails_with_a_norwegian_message(
    stored: Stored, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gateway(config_file, "claims", "show", "4711") == 1
    assert "Fant ingen regning med id 4711" in capsys.readouterr().err


def test_masking() -> None:
    assert mask_national_id("01017012345") == "010170*****"
    assert mask_national_id("123") == "*****"
    assert parse_kroner("1 234,50") == 123450
    assert kroner(123450) == "1 234,50"
    with pytest.raises(CaseworkError):
        parse_kroner("12.345")


# --- claims override ------------------------------------------------------------------------------


def effective_row(store: Store, bill_id: int) -> tuple[str, int, int]:
    row = store.engine.one(
        "SELECT status, approved_ore, overridden FROM bill_status_effective WHERE bill_id = ?",
        (bill_id,),
    )
    assert row is not None
    return str(row[0]), int(row[1]), int(row[2])


def decision_rows(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    # Everything the engine decided; ``live`` is the derived double-payment guard, which
    # follows the effective status on purpose.
    bills = store.engine.rows(
        "SELECT id, message_id, guid, regning_nr, status, approved_ore, credited_by "
        "FROM bills ORDER BY id"
    )
    findings = store.engine.rows("SELECT * FROM findings ORDER BY id")
    return bills, findings


def test_override_is_an_audited_record_and_sets_the_effective_status(
    stored: Stored, store: Store, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approved = bill_of(store, stored.ok[0])
    rejected = bill_of(store, stored.future)
    before = decision_rows(store)
    status = store.casework.effective_bill_status(approved.id)
    assert status is not None and (status.status, status.overridden) == ("godkjent", False)

    assert (
        gateway(
            config_file,
            "claims",
            "override",
            str(approved.id),
            "--reject",
            "--reason",
            "Behandling ikke dokumentert i journal",
            "--by",
            "Kari Saksbehandler",
        )
        == 0
    )
    assert "godkjent" in capsys.readouterr().out
    status = store.casework.effective_bill_status(approved.id)
    assert status is not None
    assert (status.status, status.approved_ore, status.overridden) == ("avvist", 0, True)
    assert effective_row(store, approved.id) == ("avvist", 0, 1)

    assert (
        gateway(
            config_file,
            "claims",
            "override",
            f"8141253:{rejected.regning_nr}",
            "--approve",
            "--amount",
            "100,50",
            "--reason",
            "Feil dato rettet etter kontakt",
            "--by",
            "Ola",
        )
        == 0
    )
    assert effective_row(store, rejected.id) == ("godkjent", 10050, 1)

    # The decision and its findings are untouched; the overrides are their own rows.
    assert decision_rows(store) == before
    (record,) = store.casework.overrides_for(rejected.id)
    assert (record.decision, record.amount_ore, record.by, record.kind) == (
        "godkjent",
        10050,
        "Ola",
        "override",
    )
    assert (record.previous_status, record.previous_ore) == ("avvist", 0)

    assert gateway(config_file, "claims", "show", str(rejected.id)) == 0
    out = capsys.readouterr().out
    assert "Vedtak:              avvist" in out
    assert f"Gjeldende status:    godkjent, 100,50 kr (overstyring {record.id})" in out
    assert "av Ola" in out and "Feil dato rettet etter kontakt" in out
    # The latest record wins.
    override(
        store,
        store.casework.bill(rejected.id) or rejected,
        decision="avvist",
        reason="Likevel ikke",
        by="Ola",
    )
    assert effective_row(store, rejected.id) == ("avvist", 0, 1)


def test_override_refusals(
    stored: Stored,
    store: Store,
    make_pipeline: Callable[..., Pipeline],
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bill = bill_of(store, stored.ok[0])
    for reason, by, message in (
        ("", "Kari", "begrunnelse"),
        ("Grunn", " ", "hvem"),
        ("Grunn", "rebehandling:x", "rebehandling"),
    ):
        with pytest.raises(CaseworkError, match=message):
            override(store, bill, decision="avvist", reason=reason, by=by)
    with pytest.raises(CaseworkError, match="mer enn kravet"):
        override(
            store,
            bill,
            decision="godkjent",
            reason="r",
            by="b",
            amount_ore=bill.sum_refusjon_ore + 1,
        )
    with pytest.raises(CaseworkError, match="bare brukes med --approve"):
        override(store, bill, decision="avvist", reason="r", by="b", amount_ore=100)
    assert gateway(config_file, "claims", "override", str(bill.id), "--reject", "--by", "K") == 1
    assert "begrunnelse" in capsys.readouterr().err
    assert (
        gateway(config_file, "claims", "override", "999", "--approve", "--reason", "r", "--by", "K")
        == 1
    )
    assert "Fant ingen regning" in capsys.readouterr().err

    # A duplicate of an approved bill may not be approved as well: it would be paid twice.
    pipeline = make_pipeline()
    head, krav = claim(3, bills=1)
    again = dataclasses.replace(krav.regninger[0], guid=stored.ok[0].guid)
    send(pipeline, head, with_bills(krav, [again]), 3)
    ids = store.casework.bill_ids(guid=stored.ok[0].guid)
    assert len(ids) == 2
    duplicate = store.casework.bill(ids[1])
    assert duplicate is not None and duplicate.status == "avvist"
    with pytest.raises(CaseworkError, match="betalt den to ganger"):
        override(store, duplicate, decision="godkjent", reason="r", by="b")

    # Credits, and bills credited, are not overridden.
    original = stored.ok[1]
    head, krav = claim(4, bills=1)
    credit = dataclasses.replace(original, kreditering=True, regning_nr="K1")
    send(pipeline, head, with_bills(krav, [credit]), 4)
    credit_bill = bill_of(store, credit, credit=True)
    assert credit_bill.status == "godkjent"
    with pytest.raises(CaseworkError, match="kreditering"):
        override(store, credit_bill, decision="avvist", reason="r", by="b")
    with pytest.raises(CaseworkError, match="kreditert"):
        override(store, bill_of(store, original), decision="avvist", reason="r", by="b")
    assert store.casework.overrides_for(bill.id) == []


# --- rules list -----------------------------------------------------------------------------------


def _never(_bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
    return None


def test_rules_in_force_follow_the_date() -> None:
    future = Rule(
        id="TEST-FUTURE",
        version=2,
        code="T1",
        text="t",
        severity=Severity.WARNING,
        scope=Scope.BILL,
        valid_from=date(2030, 1, 1),
        valid_to=None,
        check=_never,
        codes=frozenset({f"k{i}" for i in range(10)}),
        practitioners=frozenset({"lege"}),
    )
    ended = dataclasses.replace(
        future, id="TEST-ENDED", valid_from=date(2020, 1, 1), valid_to=date(2025, 12, 31)
    )
    rules = (*RULES, future, ended)
    now = {r.id for r in rules_in_force(rules, date(2026, 6, 1))}
    later = {r.id for r in rules_in_force(rules, date(2030, 6, 1))}
    earlier = {r.id for r in rules_in_force(rules, date(2024, 6, 1))}
    assert "TEST-FUTURE" not in now and "TEST-FUTURE" in later
    assert "TEST-ENDED" in earlier and "TEST-ENDED" not in now
    assert {r.id for r in RULES} <= now
    assert family_of(future) == _never.__module__
    assert {r.family for r in rules_in_force(RULES, date(2026, 6, 1), "generell")} == {"generell"}
    # A rule missing from the code list is shown as missing, never with a made-up code.
    (listed,) = [r for r in rules_in_force(rules, date(2030, 6, 1)) if r.id == "TEST-FUTURE"]
    assert listed.apprec_code is None and listed.shown_code == "T1 (mangler i kodeverket)"


def test_rules_list_command(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gateway(config_file, "rules", "list", "--at", "2026-11-01") == 0
    out = capsys.readouterr().out
    assert f"{len(RULES)} regler i kraft 2026-11-01" in out
    assert "DATE-766@1  kode 766  avvis regning (regning)" in out
    # The code an AppRec carries: the number from the code list, or KITH 8221's for a message.
    assert "DUP-001@1  kode 9001 (DUPLIKAT)  avvis regning (regning)" in out
    assert "SUM-001@1  kode 8221 X99 (SUMKRAV)  avvis melding (melding)" in out
    assert "mangler i kodeverket" not in out
    assert "gyldig: 2000-01-01 –" in out and "behandlere: alle" in out
    assert gateway(config_file, "rules", "list", "--at", "1999-12-31", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"at": "1999-12-31", "rules": []}
    assert gateway(config_file, "rules", "list", "--family", "generell", "--json") == 0
    listed = json.loads(capsys.readouterr().out)["rules"]
    assert {r["family"] for r in listed} == {"generell"}
    codes = {r["id"]: (r["code"], r["apprec_code"], r["apprec_code_list"]) for r in listed}
    assert codes["DUP-001"] == ("DUPLIKAT", "9001", "merknader")
    assert codes["SUM-002"] == ("ANTALLREGNINGER", "X99", "8221")
    assert codes["TYPE-001"] == ("UKJENT_BEHANDLERTYPE", "9003", "merknader")
    assert gateway(config_file, "rules", "list", "--family", "nope") == 1
    assert "kjente familier" in capsys.readouterr().err


def test_rules_list_holds_no_internal_notes(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a case worker reads says where a rule comes from, not how the project got there.
    internal = re.compile(r"\b(issue|sak)\s+\d+|decided as|familie 2", re.IGNORECASE)
    for extra in ((), ("--json",)):
        assert gateway(config_file, "rules", "list", "--at", "2026-11-01", *extra) == 0
        out = capsys.readouterr().out
        assert "grunnlag" in out or '"basis"' in out
        assert internal.findall(out) == [], extra


# --- rules explain --------------------------------------------------------------------------------


def test_explain_lists_the_rules_that_ran_and_fired(
    stored: Stored, store: Store, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bill = bill_of(store, stored.future)
    explanation = explain(store, bill)
    runs = {r.rule_id: r for r in explanation.runs}
    assert runs["DATE-766"].fired and not runs["DATE-766"].on_message
    assert runs["DATE-766"].facts["dato_tid"] == "2027-01-01 09:00"
    assert not runs["DUP-001"].fired  # the bill is not a duplicate of itself
    assert runs["SUM-001"].on_message and not runs["SUM-001"].fired
    assert explanation.status_now == "avvist" and explanation.same_ruleset
    assert [f.rule_id for f in explanation.stored_findings] == ["DATE-766", "TYPE-001"]

    assert gateway(config_file, "rules", "explain", str(bill.id)) == 0
    out = capsys.readouterr().out
    assert stored.future.patient.id not in out
    assert "SLO TIL  DATE-766@1" in out and "ok       DUP-001@1" in out
    assert "inndata: dato_tid=2027-01-01 09:00" in out
    assert f"Vedtaket (regelsett {bill.ruleset_version}): avvist" in out
    assert "samme regelsett" in out and "per nå" in out
    assert "Resultat nå: avvist, godkjent 0,00 kr" in out

    partner = bill_of(store, stored.partner)
    assert gateway(config_file, "rules", "explain", str(partner.id), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["now"]["status"] == "godkjent"
    # Nothing that refuses fired (DL-004, merknad 458, only warns about late egenandel reports;
    # TYPE-001 holds the bill for manual control, the sender's type being unknown).
    fired = {r["rule_id"] for r in data["now"]["runs"] if r["fired"]}
    assert fired - {"DL-004"} == {"TYPE-001"}
    assert data["now"]["manual"] is True
    assert {r["on"] for r in data["now"]["runs"]} == {"message", "bill"}
    assert stored.partner.patient.id not in json.dumps(data)

    # With a new rule: the ruleset differs from the decision's, and the new rule fires.
    code = stored.partner.behandling.takster[0].kode
    env = Environment(engine=RuleEngine((*RULES, _rejects_code(code))))
    now = explain(store, partner, env)
    assert not now.same_ruleset and now.ruleset_then == partner.ruleset_version
    fired_now = [r.rule_id for r in now.runs if r.fired and r.rule_id != "DL-004"]
    assert fired_now == ["TYPE-001", "TEST-NEW"]
    assert (now.status_now, now.approved_ore_now) == ("avvist", 0)
    # The warning and the manual control at intake.
    assert [f.rule_id for f in now.stored_findings] == ["TYPE-001", "DL-004"]


# --- rules replay ---------------------------------------------------------------------------------


def _rejects_code(code: str) -> Rule:
    def check(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
        if any(t.kode == code for t in bill.behandling.takster):
            return {"takst": code}
        return None

    return Rule(
        id="TEST-NEW",
        version=1,
        code="T99",
        text="Takst {takst} er ikke lenger refusjonsberettiget.",
        severity=Severity.REJECT_BILL,
        scope=Scope.BILL,
        valid_from=date(2020, 1, 1),
        valid_to=None,
        check=check,
    )


def test_replay_with_the_same_rules_changes_nothing(stored: Stored, store: Store) -> None:
    report = replay(store, since=datetime(2026, 1, 1))
    assert report.considered == 4 and report.messages == 2
    assert report.changes == [] and report.findings_only == [] and report.errors == []
    assert report.unchanged == 4


def test_replay_after_a_new_rule_shows_and_applies_the_change(
    stored: Stored, store: Store, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = stored.ok[0]
    code = target.behandling.takster[0].kode
    hit = [
        b for b in (*stored.ok, stored.partner) if any(t.kode == code for t in b.behandling.takster)
    ]
    engine = RuleEngine((*RULES, _rejects_code(code)))
    before = decision_rows(store)
    calls: list[tuple[int, int]] = []

    preview = replay(
        store,
        since=datetime(2026, 10, 1),
        engine=engine,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (4, 4)
    assert {c.bill.guid for c in preview.changes} == {b.guid for b in hit}
    change = next(c for c in preview.changes if c.bill.guid == target.guid)
    assert (change.before_status, change.after_status) == ("godkjent", "avvist")
    assert change.after_ore == 0
    assert [f.label for f in change.added] == ["TEST-NEW@1 (T99)"]
    assert change.override_id is None
    assert decision_rows(store) == before
    assert store.casework.overrides_for(change.bill.id) == []

    with pytest.raises(CaseworkError, match="--by"):
        replay(store, since=datetime(2026, 10, 1), engine=engine, apply=True)
    applied = replay(store, since=datetime(2026, 10, 1), engine=engine, apply=True, by="Kari")
    assert len(applied.recorded) == len(hit)
    (record,) = store.casework.overrides_for(change.bill.id)
    assert record.kind == "rebehandling" and record.by == "rebehandling:Kari"
    assert "TEST-NEW@1 (T99)" in record.reason and engine.version in record.reason
    assert json.loads(record.details or "{}")["added"][0]["rule_id"] == "TEST-NEW"
    assert effective_row(store, change.bill.id) == ("avvist", 0, 1)
    # The original decision and its findings are as they were.
    assert decision_rows(store) == before

    # Applying again finds nothing to change; the registry's rules would now reverse it.
    again = replay(store, since=datetime(2026, 10, 1), engine=engine, apply=True, by="Kari")
    assert again.changes == []
    back = replay(store, since=datetime(2026, 10, 1))
    assert {(c.before_status, c.after_status) for c in back.changes} == {("avvist", "godkjent")}

    # The CLI shows the same, and a manual override is never replaced by rebehandling.
    manual = bill_of(store, target)
    override(store, manual, decision="avvist", reason="Kontrollert", by="Ola")
    assert gateway(config_file, "rules", "replay", "--since", "2026-10-01") == 0
    out = capsys.readouterr().out
    assert "forhåndsvisning: ingenting er endret" in out
    assert f"regning {manual.id}" in out and "IKKE ENDRET: overstyrt av saksbehandler" in out
    assert "avvist 0,00 kr -> godkjent" in out
    assert (
        gateway(
            config_file,
            "rules",
            "replay",
            "--since",
            "2026-10-01",
            "--until",
            "2026-10-05",
            "--json",
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["considered"] == 2 and data["date_field"] == "treatment"
    assert (
        gateway(
            config_file,
            "rules",
            "replay",
            "--since",
            "2026-01-01",
            "--date-field",
            "received",
            "--apply",
            "--by",
            "Per",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "lagret:" in out
    assert effective_row(store, manual.id) == ("avvist", 0, 1)  # Ola's override stands


def _same_day_overlap(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    start = bill.dato_tid.replace(hour=0, minute=0)
    earlier = ctx.history.practitioner_bills_between(
        ctx.practitioner_id, start, start + timedelta(days=1)
    )
    if earlier:
        return {"tidligere": earlier[0].regning_nr}
    return None


def test_replay_history_leaves_out_the_bill_itself_and_later_messages(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    pipeline = make_pipeline()
    first_head, first = claim(10, bills=1, start=datetime(2026, 10, 7, 9, 0))
    second_head, second = claim(11, bills=1, start=datetime(2026, 10, 7, 11, 0))
    send(pipeline, first_head, first, 10)
    send(pipeline, second_head, second, 11)
    rule = dataclasses.replace(_rejects_code("none"), id="TEST-DAY", check=_same_day_overlap)
    report = replay(store, since=datetime(2026, 10, 7), engine=RuleEngine((*RULES, rule)))
    # Only the later bill conflicts: the first is judged as of its own arrival.
    assert [c.bill.guid for c in report.changes] == [second.regninger[0].guid]
    assert report.changes[0].added[0].facts == {"tidligere": first.regninger[0].regning_nr}

    first_bill = bill_of(store, first.regninger[0])
    history = HistoryBefore(store.history, first_bill.message_id)
    day = datetime(2026, 10, 7)
    practitioner = first_bill.practitioner_id
    assert history.practitioner_bills_between(practitioner, day, day + timedelta(1)) == []
    assert store.history.practitioner_bills_between(practitioner, day, day + timedelta(1))
    patient = first_bill.patient_id
    codes = frozenset(t.kode.lower() for t in first.regninger[0].behandling.takster)
    year = (datetime(2026, 1, 1), datetime(2027, 1, 1))
    assert store.history.patient_code_count(patient, codes, *year) > 0
    assert history.patient_code_count(patient, codes, *year) == 0
    later = HistoryBefore(store.history, first_bill.message_id + 1)
    assert later.patient_code_count(patient, codes, *year) == store.history.patient_code_count(
        patient, codes, *year
    )
    assert history.approved_bill(first_bill.sender_her, first_bill.guid) is None
    found = later.approved_bill(first_bill.sender_her, first_bill.guid)
    assert found is not None and found.regning_nr == first_bill.regning_nr


def test_replay_does_not_change_credits_or_credited_bills(
    stored: Stored, store: Store, make_pipeline: Callable[..., Pipeline]
) -> None:
    original = stored.ok[1]
    head, krav = claim(5, bills=1, start=START + timedelta(days=2))
    credit = dataclasses.replace(original, kreditering=True, regning_nr="K1")
    send(make_pipeline(), head, with_bills(krav, [credit]), 5)
    code = original.behandling.takster[0].kode
    engine = RuleEngine((*RULES, _rejects_code(code)))
    report = replay(store, since=datetime(2026, 1, 1), engine=engine, apply=True, by="Kari")
    skipped = {c.bill.id: c.skipped for c in report.changes if c.skipped}
    credit_bill = bill_of(store, credit, credit=True)
    original_bill = bill_of(store, original)
    assert "kreditering" in (skipped[credit_bill.id] or "")
    assert "kreditert av regning" in (skipped[original_bill.id] or "")
    overrides = store.casework.overrides_for
    assert overrides(credit_bill.id) == overrides(original_bill.id) == []


def test_progress_on_stderr_for_large_replays(capsys: pytest.CaptureFixture[str]) -> None:
    line = casework_cli.ProgressLine(sys.stderr, every=0.0)
    line(10, 100)
    line(100, 100)
    line(1, 2)  # small replays stay quiet
    err = capsys.readouterr().err
    assert "rebehandling: 10/100 regninger (10 %)" in err and "100/100" in err
    assert "1/2" not in err
