"""The mutations the bad-fixture table applies, and the few shapes they come in.

A bad fixture starts from a sound claim (``Start``: seeded by the fixture's file name, treated
on 2026-10-06) and breaks one thing on one level: the whole file (``whole``), the MIME message
(``message``, ``parts``), the SOAP envelope (``envelope``, ``route``), the payload
(``payload``, ``xml``, ``replaced``) or the claim's values (``claim_edit``). Each shape returns
a ``Make``: the fixture's file name in, its bytes out. The rest of this module is the edits.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from lxml import etree

from fixture_corpus.building import (
    BKM,
    EB,
    FUTURE,
    KRAV_PATH,
    OUR_HER,
    SENDERS,
    SOAP,
    Claim,
    MimeParts,
    bills_path,
    claim,
    edit_xml,
    first,
    new_uuid,
    remove,
    replace_once,
    rng_for,
    route_for,
    wrap,
)
from gateway.claims.model import Code
from gateway.ebxml.namespaces import BKM_NS, MSGHEAD_NS
from gateway.receipts.apprec import AppRec, AppRecStatus, build_apprec, wrap_in_msghead
from gateway.testing.claims import Practitioner, bkm_element, default_receiver

#: A fixture's file name in, its bytes out.
Make = Callable[[str], bytes]
XmlEdit = Callable[[etree._Element], None]


@dataclass(frozen=True, slots=True)
class Start:
    """The sound claim a mutation starts from."""

    practitioner: Practitioner = "tannlege"
    bills: int = 3
    receiver_her: str = OUR_HER

    def claim(self, name: str) -> Claim:
        return claim(
            name,
            self.practitioner,
            self.bills,
            datetime(2026, 10, 6, 9),
            receiver=default_receiver(self.receiver_her),
        )


DEFAULT = Start()


# --- the shapes -----------------------------------------------------------------------------------


def whole(make: Callable[[random.Random], bytes]) -> Make:
    """A file made from nothing but the fixture's own generator."""
    return lambda name: make(rng_for(name))


def message(edit: Callable[[bytes], bytes], start: Start = DEFAULT) -> Make:
    """The claim's ebXML message, edited as bytes."""
    return lambda name: edit(wrap(start.claim(name)))


def parts(
    edit: Callable[[MimeParts, Claim], None], start: Start = DEFAULT, *, compress: bool = False
) -> Make:
    """The claim's ebXML message with its MIME parts edited in place (part 0 is the envelope)."""

    def make(name: str) -> bytes:
        c = start.claim(name)
        split = MimeParts.split(wrap(c, compress=compress))
        edit(split, c)
        return split.render()

    return make


def envelope(edit: XmlEdit) -> Make:
    """The claim's ebXML message with its SOAP envelope's XML edited."""

    def edit_part(split: MimeParts, _claim: Claim) -> None:
        split.bodies[0] = edit_xml(split.bodies[0], edit)

    return parts(edit_part)


def route(**changes: str) -> Make:
    """The claim sent on another route (eb:To, eb:Service, eb:Action, ...)."""

    def make(name: str) -> bytes:
        c = DEFAULT.claim(name)
        return wrap(c, route=route_for(c.practitioner, **changes))

    return make


def payload(
    edit: Callable[[bytes], bytes],
    start: Start = DEFAULT,
    *,
    bare: bool = False,
    compress: bool = False,
) -> Make:
    """The claim's MsgHead bytes edited, then sent bare or in an ebXML message."""
    return replaced(lambda c: edit(c.payload()), start, bare=bare, compress=compress)


def replaced(
    build: Callable[[Claim], bytes],
    start: Start = DEFAULT,
    *,
    bare: bool = False,
    compress: bool = False,
) -> Make:
    """Another payload built from the claim, sent bare or in the claim's ebXML message."""

    def make(name: str) -> bytes:
        c = start.claim(name)
        data = build(c)
        return data if bare else wrap(c, data, compress=compress)

    return make


def xml(edit: XmlEdit, start: Start = DEFAULT, *, bare: bool = False) -> Make:
    """The claim's MsgHead with its XML edited."""
    return payload(lambda data: edit_xml(data, edit), start, bare=bare)


def as_is(start: Start, *, bare: bool = False) -> Make:
    """The start claim unchanged (the start itself is what is wrong)."""
    return payload(lambda data: data, start, bare=bare)


def claim_edit(edit: Callable[[Claim], Claim], start: Start) -> Make:
    """The claim's values changed (bills, totals), then serialised and sent."""
    return lambda name: wrap(edit(start.claim(name)))


# --- the whole file -------------------------------------------------------------------------------


def random_bytes(rng: random.Random) -> bytes:
    data = rng.randbytes(4096)
    return b"\x00" + data[1:]  # never starts with "<", so it is not taken for XML


def png(rng: random.Random) -> bytes:
    ihdr = b"\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + ihdr + rng.randbytes(1024)


def plain_mail(_rng: random.Random) -> bytes:
    return (
        b"From: behandler@avsender.test\r\nTo: mottak@kuhr.test\r\n"
        b"Subject: Refusjonskrav\r\nMessage-ID: <plain-1@avsender.test>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Hei, vedlagt er kravet for oktober.\r\n"
    )


# --- the MIME message -----------------------------------------------------------------------------


def bad_base64(raw: bytes) -> bytes:
    split = MimeParts.split(raw)
    raw = split.render()
    # Damage the payload part's base64 (the second part's third line).
    payload_start = raw.index(split.headers[1]) + len(split.headers[1]) + 4
    line_start = raw.index(b"\r\n", raw.index(b"\r\n", payload_start) + 2) + 2
    return raw[:line_start] + b"!!!!" + raw[line_start + 4 :]


def start_names_no_part(raw: bytes) -> bytes:
    return re.sub(rb'start="<[^>]+>"', b'start="<ingen-slik-del@avsender.test>"', raw, count=1)


def envelope_text(split: MimeParts, _claim: Claim) -> None:
    split.bodies[0] = b"Dette er ikke XML, bare tekst.\r\n"


def envelope_halved(split: MimeParts, _claim: Claim) -> None:
    split.bodies[0] = split.bodies[0][: len(split.bodies[0]) // 2]


def envelope_is_msghead(split: MimeParts, c: Claim) -> None:
    split.bodies[0] = c.payload()


def envelope_xxe(split: MimeParts, _claim: Claim) -> None:
    body = split.bodies[0]
    declaration_end = body.index(b"?>") + 2
    split.bodies[0] = (
        body[:declaration_end]
        + b'\n<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + body[declaration_end:]
    )


def content_id_elsewhere(split: MimeParts, _claim: Claim) -> None:
    split.headers[1] = re.sub(
        rb"Content-ID: <[^>]+>", b"Content-ID: <en-annen-del@avsender.test>", split.headers[1]
    )


def gzip_damaged(split: MimeParts, _claim: Claim) -> None:
    body = split.bodies[1]
    split.bodies[1] = body[:20] + bytes(b ^ 0x5A for b in body[20:60]) + body[60:]


def encrypted_payload(name: str) -> bytes:
    """Random bytes behind a CMS EnvelopedData header, labelled application/pkcs7-mime."""
    c = DEFAULT.claim(name)
    rng = rng_for(name)
    der = b"\x30\x82\x10\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03" + rng.randbytes(4096)
    return replace_once(
        wrap(c, der),
        b"Content-Type: text/xml\r\n",
        b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n',
    )


# --- the SOAP envelope ----------------------------------------------------------------------------


def timestamp_in_words(root: etree._Element) -> None:
    first(root, f".//{EB}MessageData/{EB}Timestamp").text = "i går"


def without_cpaid(root: etree._Element) -> None:
    remove(root, f".//{EB}MessageHeader/{EB}CPAId")


def without_manifest(root: etree._Element) -> None:
    remove(root, f"{SOAP}Body/{EB}Manifest")


def ebms_3(root: etree._Element) -> None:
    first(root, f".//{EB}MessageHeader").set(f"{EB}version", "3.0")


def must_understand(root: etree._Element) -> None:
    header = first(root, f"{SOAP}Header")
    block = etree.SubElement(header, "{urn:example:routing}Prioritet")
    block.set(f"{SOAP}mustUnderstand", "1")
    block.text = "hast"


# --- the payload bytes ----------------------------------------------------------------------------


def with_doctype(data: bytes, doctype: bytes, name_text: bytes | None = None) -> bytes:
    """``data`` with ``doctype`` after its XML declaration (and its first OrganisationName's text
    replaced by ``name_text``, say an entity reference)."""
    declaration_end = data.index(b"?>") + 2
    data = data[:declaration_end] + b"\n" + doctype + data[declaration_end:]
    if name_text is not None:
        data = re.sub(
            rb"<OrganisationName>[^<]*</OrganisationName>",
            b"<OrganisationName>" + name_text + b"</OrganisationName>",
            data,
            count=1,
        )
    return data


def xxe(data: bytes) -> bytes:
    doctype = b'<!DOCTYPE MsgHead [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return with_doctype(data, doctype, b"&xxe;")


def billion_laughs(data: bytes) -> bytes:
    entities = [b'<!ENTITY lol "lol">']
    entities += [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    ]
    doctype = b"<!DOCTYPE MsgHead [\n " + b"\n ".join(entities) + b"\n]>"
    return with_doctype(data, doctype, b"&lol9;")


def external_dtd(data: bytes) -> bytes:
    return with_doctype(data, b'<!DOCTYPE MsgHead SYSTEM "http://dtd.avsender.test/msghead.dtd">')


def gzip_bomb(data: bytes) -> bytes:
    body_start = data.index(b"<MsgHead")
    # 11 MiB of spaces before the root element: gzips to about 11 KB.
    return data[:body_start] + b" " * (11 * 1024 * 1024) + data[body_start:]


def latin1(data: bytes) -> bytes:
    # Declared UTF-8 (by the XML declaration) but written in ISO-8859-1.
    return data.decode("utf-8").encode("iso-8859-1")


def binary_payload(name: str) -> bytes:
    c = DEFAULT.claim(name)
    return wrap(c, b"\x00" + rng_for(name).randbytes(2048))


def cut(numerator: int, denominator: int) -> Callable[[bytes], bytes]:
    """The bytes cut after ``numerator/denominator`` of their length."""
    return lambda data: data[: len(data) * numerator // denominator]


def namespace_year(namespace: str, year: str) -> Callable[[bytes], bytes]:
    """The payload with ``namespace``'s date part ``year`` replaced by 2099-01-01."""
    other = namespace.replace(year, "2099-01-01")
    return lambda data: replace_once(data, namespace.encode(), other.encode())


BKM_2099 = namespace_year(BKM_NS, "2006-12-20")
MSGHEAD_2099 = namespace_year(MSGHEAD_NS, "2006-05-24")


def apprec_instead(c: Claim) -> bytes:
    """An AppRec (as if ours had come back to us) in place of the claim."""
    sender = SENDERS[c.practitioner]
    receipt = AppRec(
        id=new_uuid(c.rng),
        gen_date=datetime(2026, 11, 20, 10, 0),
        sender=sender,
        receiver=default_receiver(OUR_HER),
        status=AppRecStatus.OK,
        errors=(),
        original_msg_type=Code("APPREC", text="Applikasjonskvittering"),
        original_issue_date=datetime(2026, 11, 19, 14, 0),
        original_msg_id=new_uuid(c.rng),
    )
    carrier = wrap_in_msghead(
        build_apprec(receipt),
        msg_id=new_uuid(c.rng),
        gen_date=datetime(2026, 11, 20, 10, 0),
        sender=sender,
        receiver=default_receiver(OUR_HER),
    )
    return etree.tostring(carrier, xml_declaration=True, encoding="UTF-8")


def behandlerkrav_alone(c: Claim) -> bytes:
    return etree.tostring(bkm_element(c.krav), xml_declaration=True, encoding="UTF-8")


# --- the payload XML ------------------------------------------------------------------------------


def drop(path: str) -> XmlEdit:
    return lambda root: remove(root, path)


def drop_from_bill(local: str) -> XmlEdit:
    """Remove a child of the first Enkeltregning (``local`` below it, e.g. ``Behandling/...``)."""
    return drop(bills_path("/".join(f"{BKM}{step}" for step in local.split("/"))))


def set_text(path: str, text: str) -> XmlEdit:
    def edit(root: etree._Element) -> None:
        first(root, path).text = text

    return edit


def set_attr(path: str, name: str, value: str) -> XmlEdit:
    def edit(root: etree._Element) -> None:
        first(root, path).set(name, value)

    return edit


def bill_text(local: str, text: str) -> XmlEdit:
    """Set the text of a child of the first Enkeltregning."""
    return set_text(bills_path("/".join(f"{BKM}{step}" for step in local.split("/"))), text)


def bill_value(local: str, value: str) -> XmlEdit:
    """Set the ``V`` attribute of a child of the first Enkeltregning."""
    return set_attr(bills_path("/".join(f"{BKM}{step}" for step in local.split("/"))), "V", value)


def konto_with_child(root: etree._Element) -> None:
    krav = first(root, KRAV_PATH)
    konto = etree.Element(f"{BKM}Konto")
    konto.text = "1234.56.78903"
    etree.SubElement(konto, f"{BKM}Søppel").text = "x"
    krav.insert(0, konto)


def unknown_element(root: etree._Element) -> None:
    bill = first(root, f"{KRAV_PATH}/{BKM}Enkeltregning")
    etree.SubElement(bill, f"{BKM}Rabatt").text = "10"


def regningnr_first(root: etree._Element) -> None:
    regning_nr = first(root, bills_path(f"{BKM}RegningNr"))
    kreditering = first(root, bills_path(f"{BKM}Kreditering"))
    kreditering.addprevious(regning_nr)


# --- the claim's values ---------------------------------------------------------------------------


def antall(value: int) -> Callable[[Claim], Claim]:
    return lambda c: c.with_bills(c.krav.regninger, antall=value)


def sum_plus(delta: str) -> Callable[[Claim], Claim]:
    return lambda c: c.with_bills(c.krav.regninger, total=c.krav.sum_krav_samlet + Decimal(delta))


def in_future(indexes: Iterable[int]) -> Callable[[Claim], Claim]:
    """The bills at ``indexes`` dated in 2030, an hour apart."""
    wanted = set(indexes)

    def edit(c: Claim) -> Claim:
        return c.with_bills(
            [
                dataclasses.replace(b, dato_tid=FUTURE + timedelta(hours=i)) if i in wanted else b
                for i, b in enumerate(c.krav.regninger)
            ]
        )

    return edit


def same_guid(copies: int) -> Callable[[Claim], Claim]:
    """The first ``copies`` bills share the first bill's Guid."""

    def edit(c: Claim) -> Claim:
        bills = list(c.krav.regninger)
        for i in range(1, copies):
            bills[i] = dataclasses.replace(bills[i], guid=bills[0].guid)
        return c.with_bills(bills)

    return edit
