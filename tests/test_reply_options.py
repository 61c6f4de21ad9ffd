"""``[replies]`` read with the config, the code list checked when a pipeline is made, and the
start-up saying plainly when claims are not authenticated (no partners)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.adapters import Adapters
from gateway.config import Config
from gateway.errors import ConfigurationError
from gateway.pipeline import Pipeline
from gateway.receipts.apprec import AppRecVersion
from gateway.receipts.options import PartnerReplies, ReplyOptions
from gateway.rules.base import Rule, Scope, Severity
from gateway.rules.codes import DEFAULT_CODE_SYSTEM
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.security.xmldsig import Signer
from gateway.service import health
from gateway.service.health import Status
from gateway.settings import Table
from gateway.store import Store
from gateway.validation.catalog import SchemaCatalog
from gateway.wiring import build
from tests.conftest import IDENTITY


def options(data: dict[str, object]) -> ReplyOptions:
    return ReplyOptions.from_table(
        Table(data, base=Path("."), where="replies", source="gateway.toml")
    )


def test_the_defaults_are_bare_and_the_shipped_code_system() -> None:
    found = options({})
    assert found.rule_code_system == DEFAULT_CODE_SYSTEM and found.explain
    assert found.for_partner("8141253") == PartnerReplies(carrier="bare", apprec_version=None)


def test_partners_are_keyed_by_her_id_with_carrier_and_version() -> None:
    found = options(
        {
            "rule_code_system": "2.16.578.1.12.4.1.1.9999",
            "explain": False,
            "partners": {"8141253": {"apprec_carrier": "msghead", "apprec_version": "1.1"}},
        }
    )
    assert found.rule_code_system == "2.16.578.1.12.4.1.1.9999" and not found.explain
    assert found.for_partner("8141253") == PartnerReplies("msghead", AppRecVersion.V1_1)
    assert found.for_partner("1234567") == PartnerReplies()
    assert found.for_partner(None) == PartnerReplies()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rule_code_system": "kuhr"}, "replies.rule_code_system must be an OID"),
        ({"explained": True}, "unknown key(s) replies.explained"),
        ({"partners": {"abc": {}}}, "keyed by HER id"),
        ({"partners": {"1": {"apprec_carrier": "envelope"}}}, "apprec_carrier must be one of"),
        ({"partners": {"1": {"apprec_version": 1.1}}}, "apprec_version must be one of"),
        ({"partners": {"1": {"carrier": "bare"}}}, "unknown key(s) replies.partners.1.carrier"),
    ],
)
def test_a_bad_key_is_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        options(data)
    assert message in str(caught.value)
    assert "gateway.toml" in str(caught.value)


def test_a_rule_whose_code_is_not_in_the_list_stops_the_pipeline_from_being_made(
    store: Store, catalog: SchemaCatalog, signer: Signer
) -> None:
    unlisted = Rule(
        id="TEST-UNLISTED",
        version=1,
        code="UTENFOR_LISTEN",
        text="x",
        severity=Severity.REJECT_BILL,
        scope=Scope.BILL,
        valid_from=date(2020, 1, 1),
        valid_to=None,
        check=lambda bill, index, ctx: None,
    )
    with pytest.raises(ConfigurationError, match="TEST-UNLISTED"):
        Pipeline(
            identity=IDENTITY,
            store=store,
            catalog=catalog,
            signer=signer,
            engine=RuleEngine((*RULES, unlisted)),
            max_message_bytes=1024,
        )


def test_without_partners_the_start_and_health_say_claims_are_not_authenticated(
    tmp_path: Path, credentials: tuple[Path, Path]
) -> None:
    key, cert = credentials
    config = Config.from_mapping(
        {
            "identity": {"name": "HELFO test", "her_id": "79768"},
            "database": {"path": "var/gateway.sqlite3"},
            "spool": {"directory": "var/spool"},
            "outbox": {"directory": "var/outbox"},
            "signing": {"key_file": str(key), "cert_file": str(cert)},
            "replies": {"partners": {"8141253": {"apprec_carrier": "msghead"}}},
        },
        tmp_path / "gateway.toml",
    )
    assert Adapters.of(config).replies.for_partner("8141253").carrier == "msghead"
    with capture_logs() as logs:
        parts = build(config)
    try:
        assert parts.pipeline.replies.for_partner("8141253").carrier == "msghead"
        assert any(entry["event"] == "claims_not_authenticated" for entry in logs)
    finally:
        parts.close()
    check = asyncio.run(health.check_authentication(None))
    assert check.status is Status.WARN and "NOT authenticated" in check.detail
    check = asyncio.run(health.check_authentication(tmp_path))
    assert check.status is Status.OK
