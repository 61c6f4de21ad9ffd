"""Hostile MIME packages, ebXML headers, signatures and file-system cases for the corpus."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from lxml import etree

from gateway.ebxml import mime
from gateway.testing.cpa import DEFAULT_PARTNER, DEFAULT_US, CpaSpec
from gateway.testing.messages import Route, ebxml_message
from tests.support.hostile import Case
from tests.support.hostile_xml import MIME_PROBLEM, claim
from tests.support.pki import Credentials, TestPki

SENT = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


ROUTE = Route()


def message(seed: int, *, route: Route = ROUTE, message_id: str | None = None) -> bytes:
    return ebxml_message(
        claim(seed), route=route, rng=random.Random(seed), timestamp=SENT, message_id=message_id
    )


def _rebuild(
    raw: bytes, *, envelope: bytes | None = None, parts: list[mime.OutgoingPart] | None = None
) -> bytes:
    sent = mime.unwrap(raw)
    attachments = (
        parts
        if parts is not None
        else [
            mime.OutgoingPart(p.content_id or "x@y", p.content_type, p.body)
            for p in sent.attachments
        ]
    )
    return mime.build(
        envelope if envelope is not None else sent.envelope.body,
        attachments,
        mail_from="behandler@speare.test",
        mail_to="mottak@kuhr.test",
        subject="claim",
        message_id=f"m{abs(hash(raw)) % 10**9}@speare.test",
        date=SENT,
    )


def _boundary(raw: bytes) -> bytes:
    found = re.search(rb'boundary="([^"]+)"', raw)
    assert found is not None
    return found.group(1)


def mime_cases(seed: int) -> Iterator[Case]:
    def m(i: int) -> bytes:
        return message(seed + i)

    yield Case(
        "mime-boundary-missing-param",
        "mime",
        m(1).replace(b'boundary="' + _boundary(m(1)) + b'";', b"", 1),
        MIME_PROBLEM,
    )
    raw = m(2)
    yield Case(
        "mime-boundary-not-found", "mime", raw.replace(_boundary(raw), b"other", 1), MIME_PROBLEM
    )
    raw = m(3)
    yield Case(
        "mime-close-missing",
        "mime",
        raw.replace(b"--" + _boundary(raw) + b"--", b"", 1),
        MIME_PROBLEM,
    )
    raw = m(4)
    yield Case(
        "mime-boundary-in-body-only",
        "mime",
        raw.replace(b"--" + _boundary(raw) + b"\r\n", b"--x\r\n"),
        MIME_PROBLEM,
    )
    head = (
        b"From: a@b\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; boundary="q"; type="text/xml"\r\n\r\n'
    )
    for count in (65, 1_000, 20_000):
        body = b"".join(b"--q\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n" for _ in range(count))
        yield Case(f"mime-parts-{count}", "mime", head + body + b"--q--\r\n", MIME_PROBLEM)
    yield Case("mime-no-parts", "mime", head + b"--q--\r\n", MIME_PROBLEM)
    nested = (
        head
        + b"--q\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        + b"--r\r\n" * 1
        + b"\r\n--r--\r\n--q--\r\n"
    )
    yield Case("mime-nested-1", "mime", nested, MIME_PROBLEM)
    deep = head
    for level in range(200):
        deep += b"--q%d\r\nContent-Type: multipart/related; boundary=q%d\r\n\r\n" % (
            level,
            level + 1,
        )
    yield Case(
        "mime-nested-200", "mime", deep.replace(b'boundary="q"', b'boundary="q0"', 1), MIME_PROBLEM
    )
    for i, (name, header) in enumerate(
        {
            "subject-100k-encoded-words": b"Subject: " + b" ".join([b"=?utf-8?q?a?="] * 100_000),
            "subject-300-encoded-words": b"Subject: " + b" ".join([b"=?utf-8?b?w6bDuMOl?="] * 300),
            "fields-1000": b"\r\n".join(b"X-F%d: v" % n for n in range(1_000)),
            "header-70kb": b"X-Long: " + b"a" * 70_000,
            "header-folded-70kb": b"X-Long: a" + b"\r\n b" * 30_000,
            "bare-cr-headers": b"X-A: 1\rX-B: 2",
        }.items()
    ):
        yield Case(
            f"mime-header-{name}",
            "mime",
            header + b"\r\n" + m(10 + i),
            MIME_PROBLEM if name != "bare-cr-headers" else "accepted",
        )
    raw = m(20)
    yield Case(
        "mime-duplicate-content-type", "mime", b"Content-Type: text/plain\r\n" + raw, MIME_PROBLEM
    )
    yield Case(
        "mime-no-content-type",
        "mime",
        re.sub(rb"(?m)^Content-Type: multipart[^\r]*\r\n(?:[ \t][^\r]*\r\n)*", b"", m(21), count=1),
        MIME_PROBLEM,
    )
    for i, (name, old, new, expect) in enumerate(
        [
            (
                "cte-unknown",
                b"Content-Transfer-Encoding: base64",
                b"Content-Transfer-Encoding: x-uuencode",
                MIME_PROBLEM,
            ),
            (
                "cte-bad-base64",
                b"Content-Transfer-Encoding: base64\r\nContent-ID",
                b"Content-Transfer-Encoding: base64\r\nContent-ID",
                None,
            ),
            ("charset-unknown", b"charset=UTF-8", b"charset=x-evil-charset", MIME_PROBLEM),
            ("charset-bytes-codec", b"charset=UTF-8", b"charset=base64", MIME_PROBLEM),
            ("charset-utf16-mismatch", b"charset=UTF-8", b"charset=utf-32", MIME_PROBLEM),
            ("content-id-duplicate", None, None, MIME_PROBLEM),
            ("start-names-nothing", b'start="<', b'start="<nothing-', MIME_PROBLEM),
            ("envelope-not-xml-type", b"text/xml; charset=UTF-8", b"image/png", MIME_PROBLEM),
        ]
    ):
        raw = m(30 + i)
        if name == "cte-bad-base64":
            parts = raw.split(b"\r\n\r\n")
            parts[-1] = b"!!!not base64!!!" + parts[-1]
            yield Case(f"mime-{name}", "mime", b"\r\n\r\n".join(parts), MIME_PROBLEM)
            continue
        if name == "content-id-duplicate":
            sent = mime.unwrap(raw)
            cid = sent.attachments[0].content_id or ""
            env_cid = re.search(rb'start="<([^>]+)>"', raw)
            assert env_cid is not None
            yield Case(
                f"mime-{name}", "mime", raw.replace(env_cid.group(1), cid.encode()), MIME_PROBLEM
            )
            continue
        assert old is not None and new is not None and expect is not None
        yield Case(f"mime-{name}", "mime", raw.replace(old, new, 1), expect)
    for i, (name, href, expect) in enumerate(
        [
            ("cid-missing-part", "cid:nobody@nowhere", "ebxml:Inconsistent"),
            ("cid-http-url", "http://127.0.0.1:9/payload", "ebxml:Inconsistent"),
            ("cid-file-url", "file:///etc/passwd", "ebxml:Inconsistent"),
            ("cid-empty", "cid:", "ebxml:Inconsistent"),
        ]
    ):
        raw = m(40 + i)
        envelope = mime.unwrap(raw).envelope.body
        changed = re.sub(rb'xlink:href="[^"]*"', f'xlink:href="{href}"'.encode(), envelope, count=1)
        yield Case(f"mime-{name}", "mime", _rebuild(raw, envelope=changed), expect)
    raw = m(50)
    yield Case("mime-random-bytes", "mime", random.Random(seed).randbytes(4096), MIME_PROBLEM)
    yield Case(
        "mime-png",
        "mime",
        b"\x89PNG\r\n\x1a\n" + random.Random(seed + 1).randbytes(2048),
        MIME_PROBLEM,
    )
    yield Case(
        "mime-plain-text-mail", "mime", b"From: a@b\r\nSubject: hei\r\n\r\nhei\r\n", MIME_PROBLEM
    )
    yield Case(
        "mime-base64-envelope-garbage",
        "mime",
        _rebuild(raw, envelope=b"<SOAP:Envelope"),
        "ebxml:OtherXml",
    )


def ebxml_cases(seed: int) -> Iterator[Case]:
    routes = {
        "wrong-to-her": (Route(to_her="99999"), "ebxml:ValueNotRecognized"),
        "wrong-service": (Route(service="Evil"), "ebxml:ValueNotRecognized"),
        "wrong-action": (Route(action="Evil"), "ebxml:ValueNotRecognized"),
        "party-non-ascii": (Route(from_her="81412Ærø"), "accepted"),
        "party-very-long": (Route(from_her="8" * 500), "accepted"),
    }
    for i, (name, (route, expect)) in enumerate(routes.items()):
        yield Case(f"ebxml-{name}", "ebxml", message(seed + i, route=route), expect)
    for i, (name, message_id, expect) in enumerate(
        [
            ("message-id-crlf", "abc&#13;&#10;Bcc: victim@example.no", "accepted"),
            ("message-id-non-ascii", "blåbær-ærø@sender.test", "accepted"),
            ("message-id-10kb", "x" * 10_000, "accepted"),
        ]
    ):
        raw = message(seed + 10 + i, message_id="PLACEHOLDER")
        envelope = mime.unwrap(raw).envelope.body.replace(b"PLACEHOLDER", message_id.encode())
        yield Case(f"ebxml-{name}", "ebxml", _rebuild(raw, envelope=envelope), expect)
    for i, (name, old, new, expect) in enumerate(
        [
            ("missing-cpaid", rb"<eb:CPAId>[^<]*</eb:CPAId>", b"", "ebxml:Inconsistent"),
            ("ebms-version-3", rb'eb:version="2.0"', b'eb:version="3.0"', "ebxml:NotSupported"),
            (
                "bad-timestamp",
                rb"<eb:Timestamp>[^<]*</eb:Timestamp>",
                b"<eb:Timestamp>yesterday</eb:Timestamp>",
                "ebxml:ValueNotRecognized",
            ),
            (
                "envelope-doctype",
                rb"^<\?xml[^>]*\?>",
                b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e 'x'>]>",
                "ebxml:OtherXml",
            ),
            ("envelope-truncated", rb"</SOAP:Envelope>\s*$", b"", "ebxml:OtherXml"),
        ]
    ):
        raw = message(seed + 20 + i)
        envelope = re.sub(old, new, mime.unwrap(raw).envelope.body, count=1)
        yield Case(f"ebxml-{name}", "ebxml", _rebuild(raw, envelope=envelope), expect)
    replayed = message(seed + 30)
    yield Case("ebxml-replay-same-bytes", "ebxml", replayed, "duplicate", replay=True)


#: A second partner whose only certificate has expired (its CPA: ``expired_partner_cpa``).
EXPIRED_HER = "8141299"
EXPIRED_ROUTE = Route(cpa_id="hostile:expired", from_her=EXPIRED_HER)


def expired_partner(pki: TestPki) -> Credentials:
    now = SENT + timedelta(hours=1)
    return pki.ca.issue(
        "Utløpt",
        key_name="expired",
        her_id=EXPIRED_HER,
        not_before=now - timedelta(days=731),
        not_after=now - timedelta(days=1),
    )


def expired_partner_cpa(pki: TestPki) -> CpaSpec:
    """The CPA of the partner with the expired certificate (beside the usual one)."""
    expired = expired_partner(pki).certificate
    partner = dataclasses.replace(
        DEFAULT_PARTNER,
        her_id=EXPIRED_HER,
        mail_address="u@t.test",
        signing_certificate=expired,
        encryption_certificate=expired,
    )
    us = dataclasses.replace(
        DEFAULT_US,
        signing_certificate=pki.gateway.certificate,
        encryption_certificate=pki.gateway.certificate,
    )
    return CpaSpec(cpa_id=EXPIRED_ROUTE.cpa_id, us=us, partner=partner, encrypted=False)


def signature_cases(seed: int, pki: TestPki) -> Iterator[Case]:
    """Need partners: the CPA of ``tests.test_pipeline_security`` (partner 8141253), and
    ``expired_partner_cpa`` beside it."""
    expired = expired_partner(pki)
    stranger = pki.ca.issue("Fremmed", key_name="stranger", her_id="8141253")

    def sent(
        i: int,
        payload: bytes,
        *,
        payload_signer: object = "usual",
        envelope_signer: object = "usual",
    ) -> bytes:
        return ebxml_message(
            payload,
            rng=random.Random(seed + i),
            timestamp=SENT,
            compress=True,
            payload_signer=pki.partner.signer() if payload_signer == "usual" else payload_signer,  # type: ignore[arg-type]
            envelope_signer=pki.partner.signer() if envelope_signer == "usual" else envelope_signer,  # type: ignore[arg-type]
            encrypt_to=pki.gateway.certificate,
        )

    def signed(payload: bytes) -> etree._Element:
        return pki.partner.signer().sign(etree.fromstring(payload))

    yield Case("sig-valid", "signature", sent(0, claim(seed)), "accepted", secured=True)
    yield Case(
        "sig-msghead-missing",
        "signature",
        sent(1, claim(seed + 1), payload_signer=None),
        "apprec:S01",
        secured=True,
    )
    yield Case(
        "sig-msghead-wrong-key",
        "signature",
        sent(2, claim(seed + 2), payload_signer=stranger.signer()),
        "apprec:S01",
        secured=True,
    )
    yield Case(
        "sig-envelope-wrong-key",
        "signature",
        sent(3, claim(seed + 3), envelope_signer=stranger.signer()),
        "ebxml:SecurityFailure",
        secured=True,
    )

    def expired_sent(i: int, *, envelope_signed: bool) -> bytes:
        return ebxml_message(
            claim(seed + i, sender_her=EXPIRED_HER),
            route=EXPIRED_ROUTE,
            rng=random.Random(seed + i),
            timestamp=SENT,
            compress=True,
            payload_signer=expired.signer(),
            envelope_signer=expired.signer() if envelope_signed else None,
        )

    yield Case(
        "sig-expired-both",
        "signature",
        expired_sent(4, envelope_signed=True),
        "ebxml:SecurityFailure",
        secured=True,
    )
    yield Case(
        "sig-expired-msghead",
        "signature",
        expired_sent(5, envelope_signed=False),
        "apprec:S02",
        secured=True,
    )
    text = etree.tostring(signed(claim(seed + 6)), xml_declaration=True, encoding="UTF-8")
    tampered = text.replace(b"<RegningNr>", b"<RegningNr>9", 1)
    yield Case(
        "sig-tampered",
        "signature",
        sent(6, tampered, payload_signer=None),
        "apprec:S01",
        secured=True,
    )
    good = signed(claim(seed + 7))
    evil = etree.fromstring(claim(seed + 8))
    content = next(evil.iter("{*}Content"))
    content.append(good)
    evil.append(etree.fromstring(etree.tostring(good[len(good) - 1])))
    wrapped = etree.tostring(evil, xml_declaration=True, encoding="UTF-8")
    yield Case(
        "sig-wrapping",
        "signature",
        sent(7, wrapped, payload_signer=None),
        "apprec:S01",
        secured=True,
    )
    for i, element in enumerate(("SignatureValue", "DigestValue")):
        signed_doc = etree.tostring(
            signed(claim(seed + 20 + i)), xml_declaration=True, encoding="UTF-8"
        )
        value = re.search(f"<ds:{element}>([^<]{{8}})".encode(), signed_doc)
        assert value is not None
        broken = signed_doc.replace(value.group(1), value.group(1)[::-1], 1)
        yield Case(
            f"sig-{element.lower()}-corrupted",
            "signature",
            sent(20 + i, broken, payload_signer=None),
            "apprec:S01",
            secured=True,
        )
    yield Case(
        "sig-unknown-cpa",
        "signature",
        ebxml_message(
            claim(seed + 9),
            route=Route(cpa_id="nav:unknown:1"),
            rng=random.Random(seed + 9),
            timestamp=SENT,
        ),
        "ebxml:ValueNotRecognized",
        secured=True,
    )
    yield Case(
        "sig-wrong-roles",
        "signature",
        ebxml_message(
            claim(seed + 10),
            route=Route(from_role="KontrollUtbetaler", to_role="Behandler"),
            rng=random.Random(seed + 10),
            timestamp=SENT,
        ),
        "ebxml:Inconsistent",
        secured=True,
    )
    plain = ebxml_message(
        claim(seed + 11),
        rng=random.Random(seed + 11),
        timestamp=SENT,
        payload_signer=pki.partner.signer(),
        envelope_signer=pki.partner.signer(),
    )
    yield Case(
        "sig-unencrypted-where-required", "signature", plain, "ebxml:SecurityFailure", secured=True
    )
    yield Case(
        "sig-replay",
        "signature",
        sent(12, claim(seed + 12)),
        "duplicate",
        secured=True,
        replay=True,
    )


def fs_cases(seed: int) -> Iterator[Case]:
    """For the daemon: names and kinds of file (the data is what the file holds, if anything)."""
    yield Case("fs-symlink", "fs", b"", "parked:symlink", fs="symlink")
    yield Case("fs-fifo", "fs", b"", "parked:fifo", fs="fifo")
    yield Case("fs-directory", "fs", b"", "parked:directory", fs="directory")
    yield Case("fs-nonutf8-name", "fs", claim(seed), "accepted", fs="nonutf8")
    yield Case("fs-long-name", "fs", claim(seed + 1), "accepted", fs="longname")


def mime_truncation_cases(seed: int, count: int = 40) -> Iterator[Case]:
    """A claim message cut short at ``count`` points: headers, envelope, payload, boundary."""
    for i in range(count):
        raw = message(seed + i)
        cut = 20 + (len(raw) - 40) * i // count
        yield Case(f"mime-truncated-{i:02d}", "mime", raw[:cut], MIME_PROBLEM)


def mime_variant_cases(seed: int) -> Iterator[Case]:
    """Unusual but sound packages: each is answered as the claim it carries."""
    raw = message(seed)
    yield Case(
        "mime-subject-injection",
        "mime",
        b"Subject: x\r\n\tBcc: victim@example.no\r\n" + raw,
        "accepted",
    )
    raw = message(seed + 1)
    boundary = _boundary(raw)
    long = b"=_" + b"b" * 68
    yield Case("mime-boundary-70-chars", "mime", raw.replace(boundary, long), "accepted")
    raw = message(seed + 2)
    yield Case(
        "mime-preamble-epilogue",
        "mime",
        raw.replace(b"\r\n\r\n--", b"\r\n\r\npreamble\r\n--", 1) + b"epilogue\r\n",
        "accepted",
    )
    raw = message(seed + 3)
    yield Case("mime-lf-line-ends", "mime", raw.replace(b"\r\n", b"\n"), "accepted")
