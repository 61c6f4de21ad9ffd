"""The pain.001 payment file, check digits and payees (accounts, KIDs, RHF owners) and the
``[payout]`` config. The register's own checks of accounts, KIDs and owners are in
``test_practices_register.py``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.errors import ConfigurationError
from gateway.payout import ledger, sending
from gateway.payout.config import PayoutConfig
from gateway.payout.pain001 import PAIN001_NS, Payment, PaymentRun, build_pain001, short_id
from gateway.payout.recipients import Recipients
from gateway.payout.sending import PayoutDeps
from gateway.pipeline import Pipeline
from gateway.practices.accounts import (
    mod10_check_digit,
    mod11_check_digit,
    valid_account,
    valid_kid,
)
from gateway.practices.loading import register_from_file
from gateway.security.xmldsig import Signer
from gateway.store import Store
from tests.test_payout_ledger import send_credit
from tests.test_payout_sending import (
    HELD,
    LAB,
    PAYER_ACCOUNT,
    REGISTRY,
    RHF,
    fill,
    make_deps,
    record,
    send_claim,
)

P = {"p": PAIN001_NS}


@pytest.fixture
def deps(tmp_path: Path, signer: Signer) -> PayoutDeps:
    return make_deps(tmp_path, signer)


@pytest.fixture(scope="module")
def pain001_schema() -> etree.XMLSchema:
    """The pain.001.001.03 XSD as bundled by the sepaxml package (a test dependency)."""
    xsd = resources.files("sepaxml").joinpath("schemas/pain.001.001.03.xsd")
    return etree.XMLSchema(etree.parse(str(xsd)))


def assert_valid(schema: etree.XMLSchema, data: bytes) -> etree._Element:
    root = etree.fromstring(data)
    assert schema.validate(root), schema.error_log
    return root


def _payment(**changes: Any) -> Payment:
    values: dict[str, Any] = {
        "end_to_end_id": "2026-11-23-8100001",
        "name": "Fjordlegene AS",
        "account": "86011100009",
        "amount": Decimal("1234.50"),
        "kid": "810000100018",
        "reference": "Utbetalingsvedtak 2026-11-23-8100001",
    }
    values.update(changes)
    return Payment(**values)


def _run(*payments: Payment) -> PaymentRun:
    return PaymentRun(
        message_id="PAYOUT-2026-11-23",
        created_at=datetime(2026, 11, 23, 16, 0, 3, 123456),
        execution_date=date(2026, 11, 23),
        payer_name="HELFO Oppgjør",
        payer_org_number="889640782",
        payer_account=PAYER_ACCOUNT,
        payer_bic="DNBANOKKXXX",
        payments=payments,
    )


# --- the file of a real run -----------------------------------------------------------------------


def test_the_payment_file_of_a_run_is_valid_and_sums_to_the_ore(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    deps: PayoutDeps,
    pain001_schema: etree.XMLSchema,
) -> None:
    fill(make_pipeline)
    result = record(store, deps)
    outcome = sending.process_run(store.engine, result.run_id, deps)
    assert outcome.payment_file == deps.payments_directory / "2026-11-23.pain001.xml"
    data = outcome.payment_file.read_bytes()
    root = assert_valid(pain001_schema, data)

    transactions = root.findall(".//p:CdtTrfTxInf", P)
    by_account = {
        tx.findtext("p:CdtrAcct/p:Id/p:Othr/p:Id", namespaces=P): tx for tx in transactions
    }
    decisions = {d.account: d for d in outcome.decisions}
    assert set(by_account) == set(decisions)  # one payment per payee; the held one has none
    for account, tx in by_account.items():
        amount = tx.find("p:Amt/p:InstdAmt", P)
        assert amount is not None and amount.get("Ccy") == "NOK"
        assert Decimal(amount.text or "") * 100 == decisions[account].total_ore
        kid = decisions[account].kid
        if kid is not None:
            assert tx.findtext("p:RmtInf/p:Strd/p:CdtrRefInf/p:Ref", namespaces=P) == kid
            assert tx.findtext(".//p:CdOrPrtry/p:Cd", namespaces=P) == "SCOR"
        else:
            assert tx.findtext("p:RmtInf/p:Ustrd", namespaces=P) == (
                f"Utbetalingsvedtak {decisions[account].vedtak_id}"
            )
    paid = sum(Decimal(x.text or "") for x in root.iterfind(".//p:InstdAmt", P))
    recorded = sum(x.amount_ore for x in ledger.run_lines(store.engine, result.run_id))
    assert paid * 100 == recorded
    assert Decimal(root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=P) or "") == paid
    assert root.findtext(".//p:DbtrAcct/p:Id/p:Othr/p:Id", namespaces=P) == PAYER_ACCOUNT
    assert root.findtext(".//p:DbtrAcct/p:Ccy", namespaces=P) == "NOK"
    # Rewriting the file after a crash gives the same bytes.
    sending.finish_run(store.engine, result.run_id, deps)
    assert outcome.payment_file.read_bytes() == data


def test_a_negative_net_is_held_and_carried_to_the_next_run(
    make_pipeline: Callable[..., Pipeline], store: Store, deps: PayoutDeps
) -> None:
    filled = fill(make_pipeline)
    sending.process_run(store.engine, record(store, deps).run_id, deps)
    paid = {d.receiver_her: d.total_ore for d in sending.stored_decisions(store.engine, 1)}
    # Credits of every bill of 8100002: its net becomes negative, so it is held and carried.
    for n, regning in enumerate(filled.bills["8100002"]):
        send_credit(filled.pipeline, regning, 900 + n, her="8100002")
    second = record(store, deps, "2026-11-24")
    assert second.per_receiver == {}
    assert {x.receiver_her for x in second.held} == {"8100002", HELD}
    assert sum(x.amount_ore for x in second.held if x.receiver_her == "8100002") == -paid["8100002"]
    outcome = sending.process_run(store.engine, second.run_id, deps)
    assert outcome.decisions == () and outcome.payment_file is None

    # New bills larger than the credit: the next run nets them, and pays the difference.
    send_claim(filled.pipeline, "8100002", "lege", 20, seed=4242, day=20)  # as registered
    owed = sum(x.amount_ore for x in ledger.plan(store.engine) if x.receiver_her == "8100002")
    assert owed > 0
    third = record(store, deps, "2026-11-25")
    assert third.per_receiver == {"8100002": owed}
    kinds = {x.kind for x in ledger.run_lines(store.engine, third.run_id)}
    assert kinds == {"payment", "reversal"}
    outcome = sending.process_run(store.engine, third.run_id, deps)
    (decision,) = outcome.decisions
    assert decision.total_ore == owed
    assert outcome.payment_file is not None


def test_payments_are_refused_unless_positive_exact_and_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        _payment(amount=Decimal("0.00"))
    with pytest.raises(ValueError, match="positive"):
        _payment(amount=Decimal("-1.00"))
    with pytest.raises(ValueError, match="two decimals"):
        _payment(amount=Decimal("1.005"))
    with pytest.raises(TypeError):
        _payment(amount=1.5)
    with pytest.raises(ValueError, match="account"):
        _payment(account="86011100008")
    with pytest.raises(ValueError, match="KID"):
        _payment(kid="810000100019")
    with pytest.raises(ValueError, match="at least one"):
        build_pain001(_run())


def test_amounts_sum_exactly(pain001_schema: etree.XMLSchema) -> None:
    payments = [
        _payment(end_to_end_id=f"id-{i}", amount=Decimal("0.10"), kid=None) for i in range(10)
    ]
    root = assert_valid(pain001_schema, build_pain001(_run(*payments)))
    assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=P) == "1.00"
    assert root.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=P) == "10"
    assert root.findtext(".//p:GrpHdr/p:CreDtTm", namespaces=P) == "2026-11-23T16:00:03"


def test_long_ids_are_shortened_stably(pain001_schema: etree.XMLSchema) -> None:
    long = "manual-run-with-a-very-long-key-2026-11-23-8100001"
    assert len(short_id(long)) == 35 and short_id(long) == short_id(long)
    assert short_id("short") == "short"
    assert_valid(pain001_schema, build_pain001(_run(_payment(end_to_end_id=long))))


def test_the_same_run_gives_the_same_bytes() -> None:
    assert build_pain001(_run(_payment())) == build_pain001(_run(_payment()))


# --- check digits and the registry ----------------------------------------------------------------


def test_account_numbers_have_a_mod11_check_digit() -> None:
    assert valid_account("86011117947")
    assert not valid_account("86011117948")
    assert not valid_account("8601111794")
    assert not valid_account("8601111794a")
    # Check digit 10 makes the number impossible.
    impossible = next(
        f"{n:010d}"
        for n in range(10**9, 10**9 + 1000)
        if (
            11
            - sum(
                int(d) * w for d, w in zip(f"{n:010d}", (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True)
            )
            % 11
        )
        % 11
        == 10
    )
    assert not any(valid_account(impossible + str(d)) for d in range(10))


def test_kids_take_mod10_or_mod11() -> None:
    assert mod10_check_digit("7992739871") == "3"  # the textbook Luhn example
    assert mod11_check_digit("12345678") == "5"
    assert valid_kid("79927398713")
    assert valid_kid("123456785")
    assert not valid_kid("79927398710")
    assert not valid_kid("1")
    payload = next(p for p in (f"{n}" for n in range(10, 200)) if mod11_check_digit(p) == "-")
    assert valid_kid(payload + "-")


def test_laboratory_refunds_go_to_the_owning_rhf() -> None:
    registry = Recipients(register_from_file(REGISTRY))
    assert registry.payee(LAB, "lab").her_id == RHF
    assert registry.payee(LAB, "medisinsk_genetikk").her_id == RHF
    assert registry.payee(LAB, "lege").her_id == LAB  # only laboratory refunds
    assert registry.payee("8300001", "lab").her_id == "8300001"  # no RHF owns it
    unknown = registry.payee("9999999", None)
    assert unknown.account is None and unknown.name is None
    assert registry.payee(HELD, None).account is None


def test_the_payee_is_named_as_the_register_names_it() -> None:
    registry = Recipients(register_from_file(REGISTRY))
    assert registry.payee(HELD, "tannlege").name == "Speare AS"  # as its messages say
    rhf = registry.payee(LAB, "lab")
    assert (rhf.name, rhf.account, rhf.kid) == ("Helse Vest RHF", "12030000003", "82000011")


# --- the [payout] config --------------------------------------------------------------------------


def test_payout_config_defaults(tmp_path: Path) -> None:
    config = PayoutConfig.from_mapping({}, tmp_path)
    assert (config.enabled, config.cron, config.timezone) == (False, "0 16 * * *", "Europe/Oslo")
    assert config.receivers_file is None and config.payer_account is None
    fire = config.trigger().get_next_fire_time(None, datetime.fromisoformat("2026-11-23T12:00Z"))
    assert fire is not None and fire.isoformat() == "2026-11-23T16:00:00+01:00"
    full = PayoutConfig.from_mapping(
        {
            "enabled": True,
            "cron": "30 15 * * 1-5",
            "receivers_file": "receivers.toml",
            "payer_account": PAYER_ACCOUNT,
            "payments_directory": "../pay",
        },
        tmp_path,
    )
    assert full.receivers_file == tmp_path / "receivers.toml"
    assert full.payments_directory == (tmp_path / "../pay").resolve()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"enabled": "yes"}, "payout.enabled"),
        ({"cron": "0 25 * * *"}, "payout.cron"),
        ({"cron": ""}, "payout.cron"),
        ({"timezone": "Europe/Nowhere"}, "payout.timezone"),
        ({"payer_account": "12345678901"}, "payout.payer_account"),
        ({"claim_lease_seconds": 0}, "payout.claim_lease_seconds"),
        ({"receivers_file": 3}, "payout.receivers_file"),
        ({"shedule": "x"}, "payout.shedule"),
    ],
)
def test_payout_config_errors_name_the_key(
    tmp_path: Path, data: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        PayoutConfig.from_mapping(data, tmp_path)
