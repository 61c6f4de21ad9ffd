"""Bare AppRecs (1.0 and 1.1), with errors from real rule findings, against the official XSDs,
and read back the way an EPJ reads them: ``V`` looked up in the shipped code list.

Schemas come from ``../shared/standards`` (the ``standards`` fixture skips without them).
"""

from __future__ import annotations

import csv
import dataclasses
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.claims.model import Takst
from gateway.receipts.apprec import AppRec, AppRecStatus, AppRecVersion, serialize_apprec
from gateway.receipts.rule_errors import errors_from_evaluation
from gateway.rules.codes import DEFAULT_CODE_SYSTEM, KITH_8221
from gateway.rules.engine import Evaluation, RuleEngine
from gateway.rules.registry import RULES
from gateway.testing.history import context, enkeltregning, msghead
from tests.test_apprec_conformance import _apprecs, _parser, apprec_schema, make_apprec

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parents[1]
RECEIVED = datetime(2024, 3, 10, 12, 0)
PATIENT = "01017012345"  # a fødselsnummer with a birth date (CONT-001 refuses one without)


def assert_valid(schema: etree.XMLSchema, data: bytes) -> etree._Element:
    document = etree.fromstring(data, parser=_parser())
    if not schema.validate(document):
        pytest.fail(str(schema.error_log))
    return document


def evaluation(*, sums_wrong: bool = False, all_wrong: bool = False) -> Evaluation:
    takst = (Takst("a1", Decimal("100.00"), 1),)
    ok = enkeltregning(
        takst, guid="g1", regning_nr="93495", dato_tid=datetime(2024, 3, 1, 9), patient=PATIENT
    )
    # Future-dated and a repeated Guid: two findings, so two Errors with OT 93498.
    wrong = enkeltregning(
        takst, guid="g1", regning_nr="93498", dato_tid=datetime(2024, 3, 11, 9), patient=PATIENT
    )
    bills = (wrong,) if all_wrong else (ok, wrong)
    ctx = context(
        *bills,
        head=msghead("8141253", RECEIVED),
        sender_her="8141253",
        received_at=RECEIVED,
        practitioner="fysioterapeut",
    )
    if sums_wrong:
        ctx = dataclasses.replace(ctx, krav=dataclasses.replace(ctx.krav, antall_regninger=9))
    return RuleEngine(RULES).evaluate(ctx)


def answer(result: Evaluation, version: AppRecVersion) -> AppRec:
    errors = errors_from_evaluation(result)
    if result.message_rejected or not result.approved:
        status = AppRecStatus.AVVIST
    else:
        status = AppRecStatus.OK_FEIL_I_DELMELDING if errors else AppRecStatus.OK
    return dataclasses.replace(make_apprec(status, errors), version=version, original_msg_id="m1")


CASES = {
    "status-1": {},
    "status-2-message": {"sums_wrong": True},
    "status-2-every-bill": {"all_wrong": True},
    "status-3-per-bill": {},
}


@pytest.mark.parametrize("version", list(AppRecVersion), ids=lambda v: v.value)
def test_the_official_samples_validate_as_loaded(standards: Path, version: AppRecVersion) -> None:
    folder = standards / f"apprec-v{version.value}" / "samples"
    for sample in ("example-ok.xml", "example-avvist.xml", "all-data.xml"):
        apprec_schema(standards, version).assertValid(
            etree.parse(str(folder / sample), parser=_parser())
        )


@pytest.mark.parametrize("version", list(AppRecVersion), ids=lambda v: v.value)
def test_each_version_is_refused_by_the_other_schema_and_a_broken_one_by_its_own(
    standards: Path, version: AppRecVersion
) -> None:
    data = serialize_apprec(dataclasses.replace(make_apprec(AppRecStatus.OK, ()), version=version))
    assert_valid(apprec_schema(standards, version), data)
    other = AppRecVersion.V1_1 if version is AppRecVersion.V1_0 else AppRecVersion.V1_0
    assert not apprec_schema(standards, other).validate(etree.fromstring(data, parser=_parser()))
    broken = etree.fromstring(data, parser=_parser())
    broken.remove(broken.find(f"{{{version.namespace}}}Status"))  # type: ignore[arg-type]
    assert not apprec_schema(standards, version).validate(broken)


@pytest.mark.parametrize("version", list(AppRecVersion), ids=lambda v: v.value)
@pytest.mark.parametrize("case", sorted(CASES))
def test_answers_to_real_findings_validate_and_every_error_has_s_v_dn_ot(
    standards: Path, version: AppRecVersion, case: str
) -> None:
    result = evaluation(**CASES[case])
    if case == "status-1":
        result = dataclasses.replace(result, bills=result.approved)
    data = serialize_apprec(answer(result, version))
    root = assert_valid(apprec_schema(standards, version), data)
    errors = root.findall(f"{{{version.namespace}}}Error")
    assert bool(errors) == (case != "status-1")
    for error in errors:
        assert set(error.attrib) == {"S", "V", "DN", "OT"}
        assert all(value.strip() for value in error.attrib.values())


@pytest.mark.parametrize("version", list(AppRecVersion), ids=lambda v: v.value)
def test_an_epj_reads_the_codes_from_the_published_list(
    standards: Path, version: AppRecVersion
) -> None:
    data = serialize_apprec(answer(evaluation(), version))
    root = assert_valid(apprec_schema(standards, version), data)
    ns = {"ar": version.namespace}
    assert root.find("ar:Status", ns).get("V") == "3"  # type: ignore[union-attr]
    with (ROOT / "gateway" / "rules" / "kodeverk" / "merknader.csv").open(encoding="utf-8") as f:
        published = {row["kode"]: row["tekst"] for row in csv.DictReader(f)}
    read = [
        (e.get("OT"), e.get("S"), e.get("V"), e.get("DN")) for e in root.findall("ar:Error", ns)
    ]
    assert [(ot, s, v) for ot, s, v, _ in read] == [
        ("93498", DEFAULT_CODE_SYSTEM, "766"),
        ("93498", DEFAULT_CODE_SYSTEM, "9001"),
    ]
    assert all(published[v or ""] == dn for _, _, v, dn in read)


def test_a_refused_message_says_what_was_wrong(standards: Path) -> None:
    data = serialize_apprec(answer(evaluation(sums_wrong=True), AppRecVersion.V1_1))
    root = assert_valid(apprec_schema(standards, AppRecVersion.V1_1), data)
    (error,) = root.findall(f"{{{AppRecVersion.V1_1.namespace}}}Error")
    assert (error.get("S"), error.get("V"), error.get("DN")) == (KITH_8221, "X99", "Annen feil")
    assert "AntallRegninger (9)" in (error.get("OT") or "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(apprec=_apprecs(), version=st.sampled_from(AppRecVersion))
def test_any_bare_apprec_validates_officially(
    standards: Path, apprec: AppRec, version: AppRecVersion
) -> None:
    data = serialize_apprec(dataclasses.replace(apprec, version=version))
    assert_valid(apprec_schema(standards, version), data)
