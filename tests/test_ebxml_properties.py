"""Property tests: no received bytes make unwrap or parse_envelope fail other than as designed.

``unwrap`` returns a MimePackage or raises MimeProblem; ``parse_envelope`` returns an EbxmlMessage
or raises an EbxmlError subclass. For ``unwrap`` we also require that the catch-all in it was not
needed: every rejection must come from an explicit check (its own detail text).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.mime import MimePackage, OutgoingPart, build, unwrap
from gateway.ebxml.mime_limits import _delimiter_ends
from gateway.ebxml.model import EbxmlMessage
from gateway.errors import EbxmlError, MimeProblem

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample_msg(standards: Path) -> bytes:
    return (standards / "ebxml-ebms2" / "samples" / "2023_08_29T12_56_58_328.msg").read_bytes()


@pytest.fixture(scope="module")
def sample_xml(standards: Path) -> bytes:
    return (standards / "ebxml-ebms2" / "samples" / "2023_08_29T12_56_58_328.xml").read_bytes()


def check_unwrap(raw: bytes) -> MimePackage | None:
    try:
        package = unwrap(raw)
    except MimeProblem as problem:
        assert problem.detail != mime._UNREADABLE, repr(problem.__cause__)
        return None
    assert isinstance(package, MimePackage)
    return package


def check_parse(xml: bytes) -> EbxmlMessage | None:
    try:
        message = parse_envelope(xml)
    except EbxmlError as error:
        assert error.detail
        return None
    assert isinstance(message, EbxmlMessage)
    return message


def flipped(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in flips:
        out[position % len(out)] = value
    return bytes(out)


FLIPS = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8)


# --- unwrap ----------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=4000))
def test_unwrap_arbitrary_bytes(raw: bytes) -> None:
    check_unwrap(raw)


@SETTINGS
@given(st.data())
def test_unwrap_truncated_sample(sample_msg: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(sample_msg)))

    package = check_unwrap(sample_msg[:cut])

    if cut < len(sample_msg) - 1:  # only the final newline may go
        assert package is None


@SETTINGS
@given(FLIPS)
def test_unwrap_sample_with_flipped_bytes(sample_msg: bytes, flips: list[tuple[int, int]]) -> None:
    check_unwrap(flipped(sample_msg, flips))


@SETTINGS
@given(st.data())
def test_unwrap_sample_with_deleted_lines(sample_msg: bytes, data: st.DataObject) -> None:
    lines = sample_msg.split(b"\n")
    header_lines = [i for i, line in enumerate(lines) if b":" in line[:40] and b" " not in line[:1]]
    doomed = data.draw(st.sets(st.sampled_from(header_lines), min_size=1, max_size=4))

    check_unwrap(b"\n".join(line for i, line in enumerate(lines) if i not in doomed))


HEADER_NAMES = st.sampled_from(
    ["Content-Type", "Content-ID", "Content-Transfer-Encoding", "Message-ID", "MIME-Version"]
)
RANDOM_HEADER_LINES = st.builds(
    lambda name, value: f"{name}: {value}", HEADER_NAMES, st.text(max_size=60)
)
FIXED_HEADER_LINES = st.sampled_from(
    [
        "Content-Type: text/xml",
        "Content-Type: text/xml; charset=utf-8",
        "Content-Type: text/plain; charset=klingon",
        "Content-Type: text/plain; charset*=utf-8''%FF",
        "Content-Type: application/pkcs7-mime; smime-type=enveloped-data",
        'Content-Type: multipart/related; boundary="b1"',
        "Content-Type: multipart/mixed; boundary=b2",
        "Content-Type: ",
        "Content-Type: text/plain; charset=idna",
        "Content-Type: text/plain; charset=\x00",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: quoted-printable",
        "Content-Transfer-Encoding: 8bit",
        "Content-Transfer-Encoding: x-uuencode",
        "Content-ID: <a@x>",
        "Content-ID: <b@x>",
        "Content-ID: =?utf-8?q?=C3=A6?=",
        "Content-ID:",
        "Content-Id: <\udcff@x>",
        " folded continuation",
    ]
)
HEADER_LINES = st.one_of(FIXED_HEADER_LINES, RANDOM_HEADER_LINES)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"PGUvPg==", b"PGU", b"=ZZ", b"a=\r\nb", b"--b1", b"--b1--", b"\xff\xfe"]),
)


def raw(text: str) -> bytes:
    """Lone surrogates U+DC80..U+DCFF stand for single 8-bit bytes, as in BytesParser."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


@st.composite
def crafted_messages(draw: st.DrawFn) -> bytes:
    """multipart/related messages built from plausible and implausible pieces."""
    start = draw(st.sampled_from(["", '; start="<a@x>"', '; start="<zz@x>"', "; start*=x''%3Ca"]))
    ctype = draw(
        st.one_of(
            st.sampled_from(
                [
                    f'multipart/related; boundary="b1"; type="text/xml"{start}',
                    "multipart/related; boundary=b1",
                    "multipart/related",
                    "text/xml",
                    "text/xml; charset=latin-1",
                ]
            ),
            st.text(max_size=80).map(lambda t: f'multipart/related; boundary="b1"; {t}'),
        )
    )
    out = [b"MIME-Version: 1.0", raw(f"Content-Type: {ctype}"), b""]
    for _ in range(draw(st.integers(0, 4))):
        out.append(b"--b1")
        headers = draw(st.lists(HEADER_LINES, max_size=4))
        out += [raw(h) for h in headers]
        out.append(b"")
        out.append(draw(BODIES))
    if draw(st.booleans()):
        out.append(b"--b1--")
    separator = draw(st.sampled_from([b"\r\n", b"\n"]))
    return separator.join(out) + separator


@pytest.mark.slow
@SETTINGS
@given(crafted_messages())
def test_unwrap_crafted_messages(raw: bytes) -> None:
    check_unwrap(raw)


CONTENT_IDS = st.from_regex(r"[A-Za-z0-9.\-_]{1,20}@[a-z0-9.]{1,20}", fullmatch=True)


@SETTINGS
@given(
    envelope=st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace")),
    parts=st.lists(
        st.tuples(
            CONTENT_IDS,
            st.sampled_from(["application/pkcs7-mime", "application/octet-stream", "text/plain"]),
            st.binary(max_size=500),
        ),
        max_size=3,
        unique_by=lambda p: p[0],
    ),
    message_id=CONTENT_IDS,
)
def test_build_then_unwrap_round_trips(
    envelope: bytes, parts: list[tuple[str, str, bytes]], message_id: str
) -> None:
    outgoing = [OutgoingPart(cid, ctype, body) for cid, ctype, body in parts]

    raw = build(
        envelope,
        outgoing,
        mail_from="a@example.no",
        mail_to="b@example.no",
        subject="ebXML",
        message_id=message_id,
        date=WHEN,
    )
    package = unwrap(raw)

    assert package.envelope.body == envelope
    assert package.message_id == message_id
    assert [(p.content_id, p.content_type, p.body) for p in package.attachments] == parts
    assert raw == build(
        envelope,
        outgoing,
        mail_from="a@example.no",
        mail_to="b@example.no",
        subject="ebXML",
        message_id=message_id,
        date=WHEN,
    )


# --- parse_envelope --------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=2000))
def test_parse_arbitrary_bytes(xml: bytes) -> None:
    check_parse(xml)


@SETTINGS
@given(st.data())
def test_parse_truncated_sample(sample_xml: bytes, data: st.DataObject) -> None:
    check_parse(sample_xml[: data.draw(st.integers(0, len(sample_xml)))])


@SETTINGS
@given(FLIPS)
def test_parse_sample_with_flipped_bytes(sample_xml: bytes, flips: list[tuple[int, int]]) -> None:
    check_parse(flipped(sample_xml, flips))


@SETTINGS
@given(st.data())
def test_parse_sample_with_edited_elements(sample_xml: bytes, data: st.DataObject) -> None:
    root = etree.fromstring(sample_xml)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    for _ in range(data.draw(st.integers(1, 4))):
        target = data.draw(st.sampled_from(elements))
        action = data.draw(st.sampled_from(["remove", "text", "attribute", "duplicate"]))
        parent = target.getparent()
        if action == "remove" and parent is not None:
            parent.remove(target)
            elements = [e for e in root.iter() if isinstance(e.tag, str)]
        elif action == "text":
            target.text = data.draw(
                st.one_of(
                    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])),
                    st.sampled_from(["", "2023-02-30T00:00:00Z", "24:00", "true", "0", "cid:"]),
                )
            )
        elif action == "attribute" and target.attrib:
            names: list[str] = sorted(str(key) for key in target.attrib)
            name = data.draw(st.sampled_from(names))
            target.set(name, data.draw(st.sampled_from(["", "1", "true", "3.0", "x", "cid:%"])))
        elif action == "duplicate" and parent is not None:
            target.addnext(etree.fromstring(etree.tostring(target)))
            elements = [e for e in root.iter() if isinstance(e.tag, str)]

    check_parse(etree.tostring(root))


@given(
    body=st.binary(max_size=60).map(lambda b: bytes(b"-ab\n\r"[x % 5] for x in b)),
    boundary=st.binary(min_size=1, max_size=4).map(lambda b: bytes(b"-ab\n"[x % 4] for x in b)),
)
def test_mime_delimiters_are_found_where_a_line_start_pattern_finds_them(
    body: bytes, boundary: bytes
) -> None:
    """The byte search in ``mime_limits`` finds each ``--boundary`` at a line start exactly as
    ``re``'s ``(?m)^`` does (it replaced a pattern compiled for every message)."""
    marker = b"--" + boundary
    expected = [m.end() for m in re.finditer(rb"(?m)^" + re.escape(marker), body)]
    assert _delimiter_ends(body, marker) == expected
