"""Bounded cost for every input, and every message answered (issue 12, "Bounded cost").

Each test reproduces a case seen against the daemon: a file of thousands of invalid sibling
elements (quadratic error reporting), 100,000 encoded words in a Subject (quadratic header
decoding), a file larger than the largest message, ``gateway validate`` on the same, header
values with line breaks or non-ASCII letters that made the reply fail, an identity number
written with a space, and UTF-16/UTF-32 bare XML with and without a byte order mark.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import random
import re
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.cli import main
from gateway.ebxml import mime
from gateway.ebxml.unwrap import Truncated
from gateway.errors import MimeProblem, SchemaInvalid
from gateway.pipeline import Pipeline
from gateway.receipts.apprec import read_apprec
from gateway.receipts.replies import APPREC_SIGNATURE
from gateway.records import Outcome
from gateway.store import Store
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import Route, ebxml_message
from gateway.validation.catalog import MAX_REPORTED, SchemaCatalog
from gateway.validation.safe_xml import parse_xml

#: Far below what the unbounded code took (minutes), with room for a loaded 2-core machine.
QUICK = 3.0

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def bare_claim(seed: int = 1, bills: int = 2) -> bytes:
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=bills,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 8, 30),
    )
    return msghead_with_bkm(head, krav)


def handled(pipeline: Pipeline, raw: bytes, ref: str) -> tuple[Outcome, list[bytes], float]:
    started = time.perf_counter()
    result = pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{ref}.xml")
    seconds = time.perf_counter() - started
    # The AppRec (and any ebXML reply), not the detached signature beside a bare AppRec.
    replies = [
        r.body for r in pipeline.store.outbox.pending_replies() if r.kind != APPREC_SIGNATURE
    ]
    return result.outcome, replies, seconds


def apprec_errors(body: bytes) -> list[tuple[str, str]]:
    """(V, OT) of each Error of a bare AppRec reply, or of the AppRec inside a MIME reply."""
    if not body.lstrip().startswith(b"<"):
        package = mime.unwrap(body)
        body = next(p.body for p in package.attachments if p.body.lstrip().startswith(b"<"))
    apprec = read_apprec(body)
    return [(e.get("V", ""), e.get("OT", "")) for e in apprec.iter("{*}Error")]


# --- schema errors ---------------------------------------------------------------------------


def invalid_siblings(count: int) -> bytes:
    one = b"<Enkeltregning><Guid>x</Guid></Enkeltregning>"
    return bare_claim().replace(b"<Enkeltregning>", one * count + b"<Enkeltregning>", 1)


def test_thousands_of_invalid_siblings_are_reported_capped_and_quickly(
    catalog: SchemaCatalog,
) -> None:
    started = time.perf_counter()
    report = catalog.validate(parse_xml(invalid_siblings(4_000)))
    assert time.perf_counter() - started < QUICK
    assert len(report.problems) == MAX_REPORTED
    assert report.more == 4_000 - MAX_REPORTED
    assert report.problems[0].path.endswith("bkm:BehandlerKrav/bkm:Enkeltregning[1]")
    with pytest.raises(SchemaInvalid, match=r"og 3999 feil til"):
        report.raise_if_invalid()


def test_a_9_mb_file_of_sibling_elements_is_answered_in_seconds(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    data = invalid_siblings(200_000)  # ~9 MB
    assert len(data) > 9_000_000
    outcome, (reply,), seconds = handled(make_pipeline(), data, "siblings")
    assert seconds < QUICK
    assert outcome is Outcome.REJECTED
    assert apprec_errors(reply)[0][0] == "T01"


# --- MIME headers ----------------------------------------------------------------------------


def claim_message() -> bytes:
    return (FIXTURES / "good" / "lege-1bills.msg").read_bytes()


@pytest.mark.parametrize(
    ("prefix", "needle"),
    [
        (b"Subject: " + b" ".join([b"=?utf-8?q?a?="] * 100_000) + b"\r\n", "større enn"),
        (b"Subject: " + b" ".join([b"=?utf-8?q?a?="] * 500) + b"\r\n", "kodede ord"),
        (b"".join(b"X-H%d: v\r\n" % i for i in range(1_000)), "MIME-hoder"),
    ],
)
def test_hostile_mail_headers_are_refused_before_the_parser_sees_them(
    prefix: bytes, needle: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(MimeProblem, match=needle):
        mime.unwrap(prefix + claim_message())
    assert time.perf_counter() - started < 0.5


def test_too_many_parts_and_nested_parts_are_refused_before_parsing() -> None:
    head = b'Content-Type: multipart/related; boundary="b"\r\n\r\n'
    many = head + b"".join(b"--b\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n" for _ in range(500))
    with pytest.raises(MimeProblem, match="mer enn 64"):
        mime.unwrap(many + b"--b--\r\n")
    nested = head + b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\n--c--\r\n"
    with pytest.raises(MimeProblem, match="nøstede"):
        mime.unwrap(nested + b"--b--\r\n")


# --- size ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "code"), [("xml", "T01"), ("mime", "MimeProblem")])
def test_an_oversized_message_is_answered_by_size_and_kept_as_bounded_evidence(
    make_pipeline: Callable[..., Pipeline], store: Store, kind: str, code: str
) -> None:
    whole = bare_claim() if kind == "xml" else claim_message()
    whole += b" " * (11 * 1024 * 1024)
    raw = Truncated(whole[:65536], size=len(whole), sha256=hashlib.sha256(whole).hexdigest())
    outcome, (reply,), _ = handled(make_pipeline(), raw, "big")
    if kind == "xml":
        assert outcome is Outcome.REJECTED and apprec_errors(reply)[0][0] == "T01"
    else:
        assert outcome is Outcome.EBXML_ERROR
        assert b"MimeProblem" in mime.unwrap(reply).envelope.body
    stored = store.engine.rows("SELECT size, length(raw), sha256 FROM received")
    assert stored == [(len(whole), 65536, hashlib.sha256(whole).hexdigest())]


def test_gateway_validate_applies_the_same_limits_without_reading_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(bare_claim() + b" " * (20 * 1024 * 1024))
    bomb = tmp_path / "bomb.msg"
    bomb.write_bytes(ebxml_message(gzip_bomb(100 * 1024 * 1024)))  # 100 MB unpacked
    assert main(["validate", "--json", str(big), str(bomb)]) == 2
    verdicts = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert verdicts["big.xml"]["verdict"] == "unusable"
    assert "for stort" in verdicts["big.xml"]["notes"][0]
    assert verdicts["bomb.msg"]["verdict"] == "unusable"


def gzip_bomb(unpacked: int) -> bytes:
    """A small gzip member that unpacks to ``unpacked`` bytes of XML-looking text."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * (1024 * 1024)
    parts = [packer.compress(b"<a>")]
    parts += [packer.compress(chunk) for _ in range(unpacked // len(chunk))]
    return b"".join([*parts, packer.compress(b"</a>"), packer.flush()])


# --- replies never fail on header values ------------------------------------------------------


def test_a_message_id_with_line_breaks_and_a_non_ascii_party_is_still_answered(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    sent = mime.unwrap(
        ebxml_message(bare_claim(), route=Route(from_her="81412Ærø"), message_id="PLACEHOLDER")
    )
    envelope = sent.envelope.body.replace(b"PLACEHOLDER", b"abc&#13;&#10;Bcc: victim@example.no")
    raw = mime.build(
        envelope,
        [mime.OutgoingPart(p.content_id or "", p.content_type, p.body) for p in sent.attachments],
        mail_from="behandler@speare.test",
        mail_to="mottak@kuhr.test",
        subject="claim",
        message_id="m1@speare.test",
        date=datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
    )
    outcome, replies, _ = handled(make_pipeline(), raw, "crlf")
    assert outcome is not Outcome.FAILED
    assert replies
    for body in replies:
        headers = body.split(b"\r\n\r\n", 1)[0]
        assert headers.isascii()
        assert not any(line.startswith(b"Bcc") for line in headers.split(b"\r\n"))


# --- identity numbers ------------------------------------------------------------------------


def test_an_identity_number_written_with_a_space_reaches_neither_ot_nor_logs(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    data = re.sub(
        rb"<AntallRegninger>\d+<", b"<AntallRegninger>150765 00565<", bare_claim(), count=1
    )
    with capture_logs() as logs:
        outcome, (reply,), _ = handled(make_pipeline(), data, "fnr")
    assert outcome is Outcome.REJECTED
    (code, ot), *_ = apprec_errors(reply)
    assert code == "T02" and "00565" not in ot and "***********" in ot
    assert "00565" not in json.dumps(logs, default=str)


# --- one rule for UTF-16/UTF-32 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
        ("utf-16-le", b""),
        ("utf-32-be", b""),
    ],
)
def test_bare_xml_in_utf16_or_utf32_is_read_with_or_without_a_bom(
    make_pipeline: Callable[..., Pipeline], encoding: str, bom: bytes
) -> None:
    text = bare_claim().decode("utf-8").replace("encoding='UTF-8'", f"encoding='{encoding[:6]}'")
    outcome, (reply,), _ = handled(make_pipeline(), bom + text.encode(encoding), "wide")
    assert outcome is Outcome.ACCEPTED, apprec_errors(reply)
