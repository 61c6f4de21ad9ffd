"""Unit tests for gateway.ebxml.mime: unwrapping received MIME packages and building our own."""

from __future__ import annotations

import base64
import email
import email.header
import email.policy
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway.ebxml.mime import (
    MimePackage,
    OutgoingPart,
    build,
    normalize_content_id,
    unwrap,
)
from gateway.errors import MimeProblem

ENVELOPE_CID = "ZTTPT8UKUKU4.U2O3MHW7UL03@speare.no"
PAYLOAD_CID = "3CTGI8UKUKU4.ADHEUDMDCY3Q3@speare.no"
BOUNDARY = "----=_Part_19178_-170259799.1693306618309"
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample_msg(standards: Path) -> bytes:
    return (standards / "ebxml-ebms2" / "samples" / "2023_08_29T12_56_58_328.msg").read_bytes()


@pytest.fixture(scope="module")
def sample_envelope(standards: Path) -> bytes:
    return (standards / "ebxml-ebms2" / "samples" / "2023_08_29T12_56_58_328.xml").read_bytes()


def mime(
    *parts: tuple[list[str], bytes],
    content_type: str = 'multipart/related; boundary="b1"; type="text/xml"',
    close: bool = True,
) -> bytes:
    """A small multipart message with boundary ``b1``; each part is (header lines, raw body)."""
    out = [b"From: a@example.no", b"MIME-Version: 1.0", f"Content-Type: {content_type}".encode()]
    out.append(b"")
    for headers, body in parts:
        out.append(b"--b1")
        out += [h.encode() for h in headers]
        out.append(b"")
        out.append(body)
    if close:
        out.append(b"--b1--")
    return b"\r\n".join(out) + b"\r\n"


XML_PART = (["Content-Type: text/xml", "Content-ID: <env@x>"], b"<SOAP:Envelope/>")


# --- the real sample -------------------------------------------------------------------------


def test_real_sample_unwraps(sample_msg: bytes, sample_envelope: bytes) -> None:
    package = unwrap(sample_msg)

    assert package.message_id == "CDD3FE0A9E7248329E678B49C38C763ADB81CD33@unknown"
    assert package.envelope.content_id == ENVELOPE_CID
    assert package.envelope.content_type == "text/xml"
    assert package.envelope.body == sample_envelope
    assert len(package.attachments) == 1
    payload = package.attachments[0]
    assert payload.content_id == PAYLOAD_CID
    assert payload.content_type == "application/pkcs7-mime"
    assert ("smime-type", "enveloped-data") in payload.params
    assert payload.body[:1] == b"\x30"  # a DER SEQUENCE: the CMS EnvelopedData
    assert ("SOAPAction", '"ebXML"') in package.mail_headers


def test_real_sample_headers_are_unfolded_and_decoded(sample_msg: bytes) -> None:
    headers = dict(unwrap(sample_msg).mail_headers)

    assert headers["X-SG-EID"].startswith("mGUXlWAEj3HuQyq3Rt/M6cp")  # RFC 2047 decoded
    assert "\n" not in headers["Authentication-Results"]
    assert headers["Content-Type"].startswith("multipart/related;boundary=")


def test_real_sample_with_crlf_line_endings(sample_msg: bytes) -> None:
    lf = unwrap(sample_msg)
    crlf = unwrap(sample_msg.replace(b"\n", b"\r\n"))

    assert crlf.envelope.body == lf.envelope.body
    assert crlf.attachments == lf.attachments


@pytest.mark.parametrize(
    "reference",
    [
        PAYLOAD_CID,
        f"cid:{PAYLOAD_CID}",
        f"<{PAYLOAD_CID}>",
        "cid:3CTGI8UKUKU4.ADHEUDMDCY3Q3%40speare.no",
    ],
)
def test_part_lookup_accepts_cid_forms(sample_msg: bytes, reference: str) -> None:
    part = unwrap(sample_msg).part(reference)

    assert part is not None
    assert part.content_id == PAYLOAD_CID


def test_part_lookup_finds_envelope_and_misses_unknown(sample_msg: bytes) -> None:
    package = unwrap(sample_msg)

    assert package.part(f"cid:{ENVELOPE_CID}") is package.envelope
    assert package.part("cid:nothing@here") is None


def test_truncated_sample_is_a_mime_problem(sample_msg: bytes) -> None:
    with pytest.raises(MimeProblem, match="avkortet"):
        unwrap(sample_msg[: len(sample_msg) // 2])


def test_sample_without_closing_boundary_is_a_mime_problem(sample_msg: bytes) -> None:
    cut = sample_msg.rindex(f"--{BOUNDARY}--".encode())

    with pytest.raises(MimeProblem, match="avkortet"):
        unwrap(sample_msg[:cut])


def test_start_naming_no_part_is_a_mime_problem(sample_msg: bytes) -> None:
    broken = sample_msg.replace(
        f'start="<{ENVELOPE_CID}>"'.encode(), b'start="<missing@speare.no>"'
    )

    with pytest.raises(MimeProblem, match=re.escape("missing@speare.no")) as info:
        unwrap(broken)
    assert "start" in info.value.detail


def test_unknown_charset_on_the_envelope_is_a_mime_problem(sample_msg: bytes) -> None:
    broken = sample_msg.replace(
        b"Content-Type: text/xml\n", b"Content-Type: text/xml; charset=x-klingon\n", 1
    )

    with pytest.raises(MimeProblem, match="tegnsett"):
        unwrap(broken)


# --- crafted packages ------------------------------------------------------------------------


def test_without_start_the_first_text_xml_part_is_the_envelope() -> None:
    raw = mime(
        (["Content-Type: application/octet-stream", "Content-ID: <bin@x>"], b"abc"),
        XML_PART,
    )

    package = unwrap(raw)

    assert package.envelope.content_id == "env@x"
    assert [p.content_id for p in package.attachments] == ["bin@x"]


def test_single_part_text_xml_message_is_an_envelope_without_attachments() -> None:
    raw = b"From: a@example.no\r\nMessage-ID: <m1@x>\r\nContent-Type: text/xml\r\n\r\n<e/>\r\n"

    package = unwrap(raw)

    assert package.envelope.body == b"<e/>\r\n"
    assert package.envelope.content_id is None
    assert package.attachments == ()
    assert package.message_id == "m1@x"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"", "Meldingen er tom (0 byte"),
        (b"\r\n \t\n", "Meldingen er tom (5 byte"),
        (b"just some text without headers", "ingen MIME-hoder"),
        (b"From: a@example.no\r\n\r\nhello\r\n", "Content-Type"),
        (mime(XML_PART, content_type='multipart/mixed; boundary="b1"'), "multipart/mixed"),
        (mime(XML_PART, content_type="multipart/related"), "boundary"),
        (mime(XML_PART, content_type='multipart/related; boundary="other"'), "grensen"),
        (mime(XML_PART, close=False), "avkortet"),
        (mime(content_type='multipart/related; boundary="b1"'), "grensen"),
        (mime((["Content-Type: application/octet-stream"], b"x")), "SOAP-konvolutten"),
        (
            mime(XML_PART, content_type='multipart/related; boundary="b1"; start="<nope@x>"'),
            "nope@x",
        ),
        (
            mime(
                (["Content-Type: image/png", "Content-ID: <p@x>"], b"x"),
                content_type='multipart/related; boundary="b1"; start="<p@x>"',
            ),
            "image/png",
        ),
    ],
)
def test_broken_packages_are_mime_problems(raw: bytes, needle: str) -> None:
    with pytest.raises(MimeProblem, match=re.escape(needle)):
        unwrap(raw)


@pytest.mark.parametrize(
    ("headers", "body", "needle"),
    [
        (["Content-Transfer-Encoding: base64"], b"PD94bWw*", "base64"),
        (["Content-Transfer-Encoding: base64"], b"PD94b", "base64"),
        (["Content-Transfer-Encoding: quoted-printable"], b"a=ZZb", "quoted-printable"),
        (["Content-Transfer-Encoding: x-uuencode"], b"abc", "x-uuencode"),
        (["Content-Type: text/plain; charset=no-such-charset"], b"abc", "ukjent tegnsett"),
        (["Content-Type: text/plain; charset=base64"], b"abc", "ugyldig tegnsett"),
        (["Content-Type: text/plain; charset=utf-8"], b"\xff\xfe", "dekodes"),
        (["Content-ID: <dup@x>", "Content-ID: <dup2@x>"], b"abc", "Content-ID"),
        (["Content-Type: text/plain", "Content-Type: text/html"], b"abc", "Content-Type"),
    ],
)
def test_broken_attachments_are_mime_problems(headers: list[str], body: bytes, needle: str) -> None:
    raw = mime(XML_PART, (["Content-ID: <a@x>", *headers], body))

    with pytest.raises(MimeProblem, match=re.escape(needle)):
        unwrap(raw)


def test_duplicate_content_ids_are_a_mime_problem() -> None:
    raw = mime(XML_PART, (["Content-ID: <env@x>"], b"abc"))

    with pytest.raises(MimeProblem, match="flere deler"):
        unwrap(raw)


def test_nested_multipart_is_a_mime_problem() -> None:
    inner = b"--b2\r\nContent-Type: text/plain\r\n\r\nx\r\n--b2--"
    raw = mime(XML_PART, (['Content-Type: multipart/mixed; boundary="b2"'], inner))

    with pytest.raises(MimeProblem, match="nøstede"):
        unwrap(raw)


def test_transfer_encodings_are_decoded() -> None:
    raw = mime(
        XML_PART,
        (["Content-ID: <b64@x>", "Content-Transfer-Encoding: base64"], b"aGVp\r\nc2Fu"),
        (
            ["Content-ID: <qp@x>", "Content-Transfer-Encoding: quoted-printable"],
            b"bl=C3=A5b=C3=A6r=\r\n og =3d",
        ),
        (["Content-ID: <bin@x>", "Content-Transfer-Encoding: binary"], b"\x00\xff\x10"),
    )

    package = unwrap(raw)

    assert package.part("b64@x") is not None
    assert package.part("b64@x").body == b"heisan"  # type: ignore[union-attr]
    assert package.part("qp@x").body == "blåbær og =".encode()  # type: ignore[union-attr]
    assert package.part("bin@x").body == b"\x00\xff\x10"  # type: ignore[union-attr]


def test_charset_and_params_are_reported() -> None:
    raw = mime(
        (['Content-Type: text/xml; charset="ISO-8859-1"', "Content-ID: <env@x>"], b"<e>\xe6</e>")
    )

    envelope = unwrap(raw).envelope

    assert envelope.charset == "iso-8859-1"
    assert envelope.params == (("charset", "ISO-8859-1"),)


def test_rfc2231_start_parameter_is_understood() -> None:
    raw = mime(
        (["Content-Type: text/plain", "Content-ID: <first@x>"], b"x"),
        XML_PART,
        content_type="multipart/related; boundary=\"b1\"; start*=us-ascii''%3Cenv%40x%3E",
    )

    assert unwrap(raw).envelope.content_id == "env@x"


def test_normalize_content_id() -> None:
    assert normalize_content_id(" <a@b> ") == "a@b"
    assert normalize_content_id("CID:a%40b") == "a@b"
    assert normalize_content_id("a@b") == "a@b"


# --- build -----------------------------------------------------------------------------------


def built(
    envelope: bytes = b"<?xml version='1.0' encoding='UTF-8'?>\n<e>\xc3\xa6</e>",
    attachments: tuple[OutgoingPart, ...] = (
        OutgoingPart(
            "payload.1@gw.example",
            "application/pkcs7-mime; smime-type=enveloped-data",
            bytes(range(256)) * 3,
        ),
    ),
    message_id: str = "20240506-abc@gw.example",
    subject: str = "ebXML",
    mail_to: str = "mottak@speare.example",
) -> bytes:
    return build(
        envelope,
        attachments,
        mail_from="gateway@helfo.example",
        mail_to=mail_to,
        subject=subject,
        message_id=message_id,
        date=WHEN,
    )


def test_build_round_trips_through_unwrap() -> None:
    envelope = "<?xml version='1.0' encoding='UTF-8'?>\n<e>æøå</e>".encode()
    parts = (
        OutgoingPart(
            "p1@gw.example", "application/pkcs7-mime; smime-type=enveloped-data", b"\x00" * 1000
        ),
        OutgoingPart("p2@gw.example", "text/plain", b""),
    )

    package = unwrap(built(envelope, parts))

    assert isinstance(package, MimePackage)
    assert package.message_id == "20240506-abc@gw.example"
    assert package.envelope.body == envelope
    assert package.envelope.content_type == "text/xml"
    assert package.envelope.charset == "utf-8"
    assert [(p.content_id, p.content_type, p.body) for p in package.attachments] == [
        ("p1@gw.example", "application/pkcs7-mime", b"\x00" * 1000),
        ("p2@gw.example", "text/plain", b""),
    ]
    assert ("smime-type", "enveloped-data") in package.attachments[0].params


def test_build_is_smtp_ready() -> None:
    raw = built()

    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert raw.endswith(b"--\r\n")
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert 'SOAPAction: "ebXML"' in head
    assert "MIME-Version: 1.0" in head
    assert "Message-ID: <20240506-abc@gw.example>" in head
    assert "Date: Mon, 06 May 2024 07:08:09 +0000" in head
    assert 'type="text/xml"' in head


def test_build_start_names_the_envelope_part() -> None:
    raw = built()
    package = unwrap(raw)
    start = re.search(rb'start="<([^>]+)>"', raw)

    assert start is not None
    assert package.envelope.content_id == start.group(1).decode()
    assert b"Content-Transfer-Encoding: base64" in raw


def test_build_is_deterministic() -> None:
    assert built() == built()
    assert built(message_id="<other@gw.example>") != built()


def test_build_encodes_a_norwegian_subject() -> None:
    raw = built(subject="Svar på oppgjørsmelding")

    assert raw.isascii()
    assert ("Subject", "Svar på oppgjørsmelding") in unwrap(raw).mail_headers


def test_build_with_the_real_sample_parts(sample_msg: bytes) -> None:
    original = unwrap(sample_msg)
    parts = tuple(
        OutgoingPart(p.content_id or "", p.content_type, p.body) for p in original.attachments
    )

    again = unwrap(built(original.envelope.body, parts))

    assert again.envelope.body == original.envelope.body
    assert [p.body for p in again.attachments] == [p.body for p in original.attachments]


def test_build_base64_lines_decode_to_the_body() -> None:
    body = bytes(range(256))
    raw = built(attachments=(OutgoingPart("x@y", "application/octet-stream", body),))
    part = raw.split(b"Content-ID: <x@y>\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]

    assert base64.b64decode(part) == body


@pytest.mark.parametrize(
    "kwargs",
    [
        {"date": datetime(2024, 1, 1)},  # naive
        {"mail_from": "a@b\r\nBcc: victim@example.no"},
        {"message_id": "has space@x"},
        {"envelope_xml": "<e>æ</e>".encode("latin-1")},
        {
            "attachments": [
                OutgoingPart("d@x", "text/plain", b""),
                OutgoingPart("d@x", "text/plain", b""),
            ]
        },
        {"attachments": [OutgoingPart("<d@x>", "text/plain", b"")]},
        {"attachments": [OutgoingPart("d@x", "text/plain\r\nX-Evil: 1", b"")]},
    ],
)
def test_build_refuses_values_it_cannot_send(kwargs: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "envelope_xml": b"<e/>",
        "attachments": [],
        "mail_from": "a@example.no",
        "mail_to": "b@example.no",
        "subject": "s",
        "message_id": "m@x",
        "date": WHEN,
    }
    arguments.update(kwargs)

    with pytest.raises(ValueError):
        build(**arguments)  # type: ignore[arg-type]


def test_build_makes_sender_supplied_subject_and_recipient_header_safe() -> None:
    # Both may carry what a sender wrote (its MessageId, its PartyId): never a reason to leave
    # the message unanswered, never a way to add a header.
    raw = built(subject="ebXML apprec for hei\r\nBcc: victim@example.no\x00", mail_to="HER:Ærø\n1")
    headers = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert not any(line.lower().startswith(b"bcc") for line in headers)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "ebXML apprec for hei Bcc: victim@example.no"
    (to,) = [line[4:] for line in headers if line.startswith(b"To: ")]
    assert str(email.header.make_header(email.header.decode_header(to.decode()))) == "HER:Ærø 1"
    assert raw.isascii()


def test_build_keeps_the_sender_time_zone() -> None:
    oslo_summer = timezone(timedelta(hours=2))
    raw = build(
        b"<e/>",
        [],
        mail_from="a@example.no",
        mail_to="b@example.no",
        subject="s",
        message_id="m@x",
        date=WHEN.astimezone(oslo_summer),
    )

    assert b"Date: Mon, 06 May 2024 09:08:09 +0200\r\n" in raw
