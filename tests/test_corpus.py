"""The fixtures corpus (``fixtures/``) through the pipeline: every file answers as it is named.

- ``good/*``: AppRec status 1 (and an acknowledgment when the message asks for one);
- ``bad/<expect>--*``: ``apprec-<status>-<code>`` or ``ebxml-<errorCode>``;
- ``sequences/<name>/``: steps run in order on one store, as ``expect.toml`` says.

Each file runs on a fresh store with the clock at ``FIXED_NOW``. For every answer: the outcome,
the reply kinds, the AppRec's status and error codes (and for per-bill errors that ``OT`` names
the offending bills, found here from the payload itself), the MessageError's code and Norwegian
description, that the bare AppRec's integrity checks out (the signed ebXML envelope's ``cid:``
reference over it, or the detached CMS signature beside a file) and AppRecs and ebXML envelopes
validate against the project schemas, and that the original bytes are in the store. The corpus
itself must be what ``tools/make_fixtures.py`` writes, byte for byte.

Fixtures are named after the rule's mnemonic (``DUPLIKAT``, ``SUMKRAV``), readable for a person;
the AppRec carries its number from the shipped code list (``gateway.rules.codes``), and a
message-level rule its KITH 8221 code: ``wire_code`` maps one to the other.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.clock import local_naive
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import EbxmlMessage
from gateway.ebxml.namespaces import APPREC_NS, BKM_NS, MSGHEAD_NS
from gateway.errors import MimeProblem
from gateway.pipeline import Pipeline, Result
from gateway.receipts.apprec import read_apprec
from gateway.records import Outcome, StoredReply
from gateway.rules.codes import DEFAULT_CODE_SYSTEM, shipped_code_list
from gateway.security import cms_signed
from gateway.security.certificates import load_certificate
from gateway.security.signatures import verify_ebxml_envelope
from gateway.store import Store
from gateway.testing.claims import fnr_is_valid
from gateway.validation.catalog import SchemaCatalog
from gateway.validation.safe_xml import parse_xml
from tests.conftest import FIXED_NOW

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_ROOT / "fixtures"
GENERATOR = PROJECT_ROOT / "tools" / "make_fixtures.py"

#: Every expectation a bad fixture may be named after.
KNOWN_EXPECTATIONS = frozenset(
    {
        "apprec-2-T01",
        "apprec-2-T02",
        "apprec-2-T10",
        "apprec-2-E21",
        "apprec-2-SUMKRAV",
        "apprec-2-ANTALLREGNINGER",
        "apprec-2-766",
        "apprec-3-766",
        "apprec-3-DUPLIKAT",
        "ebxml-MimeProblem",
        "ebxml-OtherXml",
        "ebxml-ValueNotRecognized",
        "ebxml-Inconsistent",
        "ebxml-NotSupported",
    }
)
#: The fixed Norwegian text that opens each MessageError description, per errorCode.
EBXML_TEXTS = {
    "MimeProblem": "Feil i MIME-pakken",
    "OtherXml": "ebXML-konvolutten kan ikke leses",
    "ValueNotRecognized": "Ukjent verdi i ebXML-hodet",
    "Inconsistent": "Motstridende verdier i ebXML-hodet",
    "NotSupported": "Funksjonen støttes ikke",
}
#: KITH code list 8221, the AppRec error codes for message-level rejections.
KITH_8221 = "2.16.578.1.12.4.1.1.8221"
KITH_8221_CODES = frozenset({"T01", "T02", "T10", "E21"})
#: Rule codes given per bill: ``OT`` is the bill's RegningNr.
BILL_CODES = frozenset({"766", "DUPLIKAT", "KREDITERING"})


def _now() -> datetime:
    """When our replies are checked: the test key is made at the start of the session, later
    than the pipeline's fixed clock, so its signatures are checked as of now."""
    return datetime.now(UTC)


def wire_code(name: str) -> tuple[str, str]:
    """(``Error/@V``, ``Error/@S``) of a code a fixture is named after: a KITH 8221 code as it
    is, a per-bill rule's mnemonic as its number in the code list, a message-level rule's as its
    8221 code."""
    codes = shipped_code_list()
    if name in KITH_8221_CODES or name == "E10":
        return name, KITH_8221
    try:
        return codes.merknad(name).value, DEFAULT_CODE_SYSTEM
    except LookupError:
        return codes.message_code(name).code, KITH_8221
#: Rule 766 allows the sender's clock to be this far ahead.
CLOCK_TOLERANCE = timedelta(minutes=10)

_BAD_NAME = re.compile(
    r"(?P<expect>(?:apprec-(?P<status>[123])-(?P<code>[A-Z0-9]+))|(?:ebxml-(?P<ebxml>[A-Za-z]+)))"
    r"--(?P<description>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<ext>msg|eml|xml)"
)
_GOOD_NAME = re.compile(
    r"(?P<practitioner>tannlege|lege|psykolog|lab)-(?P<bills>[1-9][0-9]*)bills"
    r"(?:-(?P<variant>[a-z0-9]+(?:-[a-z0-9]+)*))?\.(?P<ext>msg|eml|xml)"
)

_AR = f"{{{APPREC_NS}}}"
_MH = f"{{{MSGHEAD_NS}}}"
_BKM = f"{{{BKM_NS}}}"
_OUTCOME_FOR_STATUS = {1: Outcome.ACCEPTED, 2: Outcome.REJECTED, 3: Outcome.PARTIALLY_ACCEPTED}


def _files(sub: str) -> list[Path]:
    directory = FIXTURES / sub
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file())


GOOD = _files("good")
BAD = _files("bad")
SEQUENCES = sorted(
    p for p in (FIXTURES / "sequences").glob("*") if p.is_dir() and (p / "expect.toml").is_file()
)


# --- expectations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    """What one message must be answered with."""

    outcome: Outcome
    acknowledgment: bool
    apprec_status: int | None = None
    codes: tuple[str, ...] = ()
    #: RegningNr of each bill rejected by a per-bill rule; ``None``: not a per-bill expectation.
    ot: tuple[str, ...] | None = None
    ebxml_error: str | None = None


def expect_bad(path: Path) -> Expect:
    match = _BAD_NAME.fullmatch(path.name)
    if match is None or match["expect"] not in KNOWN_EXPECTATIONS:
        raise ValueError(f"{path.name} is not named <known expectation>--<description>.<ext>")
    if match["ebxml"]:
        return Expect(Outcome.EBXML_ERROR, acknowledgment=False, ebxml_error=match["ebxml"])
    status, code = int(match["status"]), match["code"]
    ot = offending_bills(path.read_bytes(), code) if code in BILL_CODES else None
    return Expect(
        _OUTCOME_FOR_STATUS[status],
        acknowledgment=match["ext"] != "xml",
        apprec_status=status,
        codes=(code,),
        ot=ot,
    )


def expect_good(path: Path) -> Expect:
    match = _GOOD_NAME.fullmatch(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not named <practitioner>-<n>bills[-variant].<ext>")
    variant = match["variant"] or ""
    ack = match["ext"] != "xml" and "noack" not in variant.split("-")
    return Expect(Outcome.ACCEPTED, acknowledgment=ack, apprec_status=1)


def expect_step(step: dict[str, Any]) -> Expect:
    outcome = Outcome(step["outcome"])
    codes = tuple(str(c) for c in step.get("codes", ()))
    ot = tuple(str(o) for o in step["ot"]) if "ot" in step else None
    return Expect(
        outcome,
        acknowledgment=bool(step.get("acknowledgment", False)),
        apprec_status=step.get("apprec_status"),
        codes=codes,
        ot=ot,
        ebxml_error=step.get("ebxml_error"),
    )


# --- reading the fixtures independently of the pipeline --------------------------------------


def payload_of(raw: bytes) -> bytes:
    """The MsgHead bytes of one of our own (sound) fixtures: bare, or the MIME payload part."""
    if raw.lstrip().startswith(b"<"):
        return raw
    package = mime.unwrap(raw)
    (part,) = package.attachments
    if part.body.startswith(b"\x1f\x8b"):
        return zlib.decompress(part.body, 16 + zlib.MAX_WBITS)
    return part.body


def bills_of(raw: bytes) -> list[etree._Element]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(payload_of(raw), parser)
    return list(root.iter(f"{_BKM}Enkeltregning"))


def _text(bill: etree._Element, local: str) -> str:
    element = bill.find(f"{_BKM}{local}")
    assert element is not None and element.text is not None, local
    return element.text.strip()


def offending_bills(raw: bytes, code: str) -> tuple[str, ...]:
    """RegningNr of the bills a per-bill rule must reject, worked out from the payload."""
    bills = bills_of(raw)
    if code == "766":
        latest = local_naive(FIXED_NOW) + CLOCK_TOLERANCE
        return tuple(
            _text(b, "RegningNr")
            for b in bills
            if datetime.fromisoformat(_text(b, "DatoTid")) > latest
        )
    if code == "DUPLIKAT":
        seen: set[str] = set()
        repeated: list[str] = []
        for bill in bills:
            guid = _text(bill, "Guid")
            if guid in seen:
                repeated.append(_text(bill, "RegningNr"))
            seen.add(guid)
        return tuple(repeated)
    raise ValueError(f"no offending-bill rule for {code}")  # pragma: no cover


# --- checking one answer --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checker:
    pipeline: Pipeline
    store: Store
    catalog: SchemaCatalog
    cert_pem: bytes

    def run(self, path: Path, source_ref: str) -> tuple[Result, list[StoredReply]]:
        raw = path.read_bytes()
        result = self.pipeline.handle(
            raw, source="spool", source_ref=source_ref, source_name=path.name
        )
        row = self.store.engine.one(
            "SELECT raw, outcome FROM received WHERE id = ?", (result.received_id,)
        )
        assert row is not None, "the intake is not in the store"
        assert bytes(row[0]) == raw, "the stored original differs from the file"
        assert row[1] == result.outcome.value
        return result, self.store.intake.replies_for(result.received_id)

    def check(self, path: Path, expect: Expect, result: Result, replies: list[StoredReply]) -> None:
        detail = f" (detail: {result.detail})" if result.detail else ""
        assert result.outcome is expect.outcome, f"{path.name}: {result.outcome}{detail}"
        kinds = tuple(r.kind for r in replies)
        assert kinds == result.replies
        if expect.outcome is Outcome.EBXML_ERROR:
            assert kinds == ("message_error",)
            assert expect.ebxml_error is not None
            self.check_message_error(replies[0].body, expect.ebxml_error)
            assert result.apprec_status is None
            return
        ebxml = path.suffix != ".xml"
        answer = ("apprec",) if ebxml else ("apprec", "apprec_signature")
        wanted = ("acknowledgment", *answer) if expect.acknowledgment else answer
        assert kinds == wanted
        for reply in replies:
            if reply.kind == "acknowledgment":
                self.check_acknowledgment(reply.body)
            elif reply.kind == "apprec":
                apprec = self.check_apprec(reply, replies, ebxml=ebxml)
                if expect.apprec_status is not None:
                    self.check_apprec_content(apprec, expect)
        if expect.outcome is not Outcome.DUPLICATE:
            assert result.apprec_status == expect.apprec_status

    # --- replies --------------------------------------------------------------------------------

    def envelope(self, body: bytes) -> tuple[mime.MimePackage, EbxmlMessage]:
        package = mime.unwrap(body)
        report = self.catalog.validate(parse_xml(package.envelope.body))
        assert report.valid, report.problems
        return package, parse_envelope(package.envelope.body)

    def check_acknowledgment(self, body: bytes) -> None:
        _, message = self.envelope(body)
        assert message.header.action == "Acknowledgment"
        assert message.acknowledgment_ref == message.header.ref_to_message_id

    def check_message_error(self, body: bytes, code: str) -> None:
        package, message = self.envelope(body)
        assert message.header.action == "MessageError"
        assert not package.attachments
        assert [e.code for e in message.error_list] == [code]
        (error,) = message.error_list
        assert error.severity == "Error"
        assert error.lang == "no"
        assert error.description.startswith(f"{EBXML_TEXTS[code]}: "), error.description
        assert len(error.description) > len(EBXML_TEXTS[code]) + 2, "no detail given"

    def check_apprec(
        self, reply: StoredReply, replies: list[StoredReply], *, ebxml: bool
    ) -> etree._Element:
        """Check the bare AppRec's integrity (the signed envelope's cid: reference over it, or
        the detached signature beside the file) and validate it; return it."""
        return read_apprec(self.verified_apprec(reply, replies, ebxml=ebxml))

    def verified_apprec(
        self, reply: StoredReply, replies: list[StoredReply], *, ebxml: bool
    ) -> bytes:
        certificate = load_certificate(self.cert_pem)
        if ebxml:
            package, message = self.envelope(reply.body)
            assert message.header.action == "Svarmelding"
            (part,) = package.attachments
            assert part.content_id is not None
            verify_ebxml_envelope(
                package.envelope.body, {part.content_id: part.body}, certificate, _now()
            )
            document = part.body
        else:
            (signature,) = [r for r in replies if r.kind == "apprec_signature"]
            assert signature.filename == reply.filename + cms_signed.SIGNATURE_SUFFIX
            cms_signed.verify(reply.body, signature.body, certificate, at=_now())
            document = reply.body
        report = self.catalog.validate(parse_xml(document))
        assert report.valid, report.problems
        return document

    def check_apprec_content(self, apprec: etree._Element, expect: Expect) -> None:
        status = apprec.find(f"{_AR}Status")
        assert status is not None
        errors = apprec.findall(f"{_AR}Error")
        codes = [e.get("V") for e in errors]
        assert status.get("V") == str(expect.apprec_status), codes
        if expect.apprec_status == 1:
            assert errors == []
            return
        assert errors, "a rejecting AppRec needs an Error"
        wanted = [wire_code(code) for code in expect.codes]
        found = [(e.get("V"), e.get("S")) for e in errors]
        for code in wanted:
            assert code in found, f"{code} not among {found}"
        for error in errors:
            # Complete, as KITH's sample: S, V, DN and OT on every Error.
            assert error.get("DN"), "every Error has a Norwegian text"
            assert error.get("S") in (KITH_8221, DEFAULT_CODE_SYSTEM)
            assert error.get("OT"), "every Error says what it concerns in OT"
            if error.get("S") == DEFAULT_CODE_SYSTEM:
                assert (error.get("V") or "").isdigit(), "per-bill codes are numbers"
        if expect.ot is not None:
            values = {v for v, _ in wanted}
            bill_errors = sorted(e.get("OT") or "" for e in errors if e.get("V") in values)
            assert bill_errors == sorted(expect.ot)


@pytest.fixture
def checker(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    catalog: SchemaCatalog,
    credentials: tuple[Path, Path],
) -> Checker:
    return Checker(make_pipeline(), store, catalog, credentials[1].read_bytes())


# --- the corpus -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_fixture_is_accepted(path: Path, checker: Checker) -> None:
    expect = expect_good(path)
    result, replies = checker.run(path, f"good/{path.name}")
    checker.check(path, expect, result, replies)
    # The AppRec answers this claim: OriginalMsgId is the claim's MsgId.
    payload = etree.fromstring(payload_of(path.read_bytes()))
    msg_id = payload.findtext(f"{_MH}MsgInfo/{_MH}MsgId")
    apprec_reply = next(r for r in replies if r.kind == "apprec")
    apprec = checker.check_apprec(apprec_reply, replies, ebxml=path.suffix != ".xml")
    assert apprec.findtext(f"{_AR}OriginalMsgId/{_AR}Id") == msg_id


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_fixture_is_answered_as_named(path: Path, checker: Checker) -> None:
    expect = expect_bad(path)
    result, replies = checker.run(path, f"bad/{path.name}")
    checker.check(path, expect, result, replies)


@pytest.mark.parametrize("directory", SEQUENCES, ids=lambda p: p.name)
def test_sequence(directory: Path, checker: Checker) -> None:
    spec = tomllib.loads((directory / "expect.toml").read_text("utf-8"))
    seen: dict[str, list[StoredReply]] = {}
    for step in spec["steps"]:
        path = directory / step["file"]
        result, replies = checker.run(path, f"sequences/{directory.name}/{path.name}")
        known_bug = step.get("known_bug")
        try:
            checker.check(path, expect_step(step), result, replies)
            check_same_as(step, replies, seen)
        except AssertionError:
            if known_bug:
                pytest.xfail(f"known pipeline bug: {known_bug}")
            raise
        if known_bug:
            pytest.fail(f"{path.name} passes now; remove known_bug from expect.toml")
        seen[step["file"]] = replies


def check_same_as(
    step: dict[str, Any], replies: list[StoredReply], seen: dict[str, list[StoredReply]]
) -> None:
    """A duplicate is answered with the replies of the first time, byte for byte."""
    if "same_replies_as" in step:
        earlier = seen[step["same_replies_as"]]
        assert [(r.kind, r.body) for r in replies] == [(r.kind, r.body) for r in earlier]
    if "same_apprec_as" in step:
        earlier_apprec = [r.body for r in seen[step["same_apprec_as"]] if r.kind == "apprec"]
        assert [r.body for r in replies if r.kind == "apprec"] == earlier_apprec


# --- the corpus is complete, well named and up to date ---------------------------------------


def test_corpus_size() -> None:
    assert len(GOOD) >= 10
    assert len(BAD) >= 30
    assert len(SEQUENCES) >= 5


def test_every_bad_fixture_names_a_known_expectation() -> None:
    wrong = [p.name for p in BAD if _BAD_NAME.fullmatch(p.name) is None]
    wrong += [
        p.name
        for p in BAD
        if (m := _BAD_NAME.fullmatch(p.name)) is not None and m["expect"] not in KNOWN_EXPECTATIONS
    ]
    assert wrong == []
    named = {m["expect"] for p in BAD if (m := _BAD_NAME.fullmatch(p.name)) is not None}
    assert named == KNOWN_EXPECTATIONS, "every expectation has at least one fixture"


def test_every_good_fixture_is_well_named_with_its_bill_count() -> None:
    for path in GOOD:
        match = _GOOD_NAME.fullmatch(path.name)
        assert match is not None, path.name
        assert len(bills_of(path.read_bytes())) == int(match["bills"]), path.name
    practitioners = {m["practitioner"] for p in GOOD if (m := _GOOD_NAME.fullmatch(p.name))}
    assert practitioners == {"tannlege", "lege", "psykolog", "lab"}


def test_every_sequence_step_is_listed() -> None:
    for directory in SEQUENCES:
        spec = tomllib.loads((directory / "expect.toml").read_text("utf-8"))
        listed = [step["file"] for step in spec["steps"]]
        on_disk = sorted(p.name for p in directory.iterdir() if p.name != "expect.toml")
        assert listed == on_disk, directory.name
        for step in spec["steps"]:
            expect_step(step)  # a known outcome


def test_samples_are_copies_of_corpus_files() -> None:
    corpus = {p.read_bytes(): p for p in (*GOOD, *BAD)}
    samples = _files("samples")
    assert 3 <= len(samples) <= 5
    copied = [corpus[s.read_bytes()] for s in samples]  # KeyError: not a copy
    assert sum(p.parent.name == "good" for p in copied) >= 2
    assert any(p.name.startswith("apprec-2-T02--") for p in copied)
    assert any("-766--" in p.name for p in copied)


def test_patients_have_synthetic_identity_numbers_only() -> None:
    steps = [p for d in SEQUENCES for p in sorted(d.iterdir()) if p.name != "expect.toml"]
    checked = 0
    for path in (*GOOD, *BAD, *steps):
        try:
            bills = bills_of(path.read_bytes())
        except (MimeProblem, ValueError, zlib.error, etree.XMLSyntaxError):
            continue  # a fixture whose payload cannot be read carries no patient
        for bill in bills:
            ident = bill.find(f"{_BKM}Patient/{_BKM}Ident")
            assert ident is not None
            number = ident.findtext(f"{_BKM}Id") or ""
            type_id = ident.find(f"{_BKM}TypeId")
            assert type_id is not None and type_id.get("V") == "FNR", path.name
            # Tenor test persons: month + 80, so no number can be a real person's.
            assert fnr_is_valid(number) and int(number[2:4]) > 80, path.name
            checked += 1
    assert checked > 300


def _generated_files() -> Iterator[Path]:
    yield FIXTURES / "README.md"
    for sub in ("good", "bad", "sequences", "samples"):
        yield from (p for p in (FIXTURES / sub).rglob("*") if p.is_file())


def test_corpus_is_what_the_generator_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("make_fixtures", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    expected: dict[str, bytes] = module.corpus()
    actual = {p.relative_to(FIXTURES).as_posix(): p.read_bytes() for p in _generated_files()}
    assert sorted(actual) == sorted(expected), "run .venv/bin/python tools/make_fixtures.py"
    stale = [name for name, data in expected.items() if actual[name] != data]
    assert stale == [], "run .venv/bin/python tools/make_fixtures.py"
