"""Write the fixtures corpus: good and bad claim messages, sequences and README samples.

Run ``.venv/bin/python tools/make_fixtures.py`` from the project root. Everything under
``fixtures/good``, ``fixtures/bad``, ``fixtures/sequences`` and ``fixtures/samples`` and the file
``fixtures/README.md`` is deleted and written again from fixed seeds, fixed timestamps and fixed
ids: a re-run gives byte-identical files (``tests/test_corpus.py`` checks that).

Every file is named after what the pipeline must answer (see ``fixtures/README.md``):

- ``good/<practitioner>-<n>bills[-variant].<ext>``: AppRec status 1;
- ``bad/<expect>--<description>.<ext>``: ``<expect>`` is ``apprec-<status>-<code>`` or
  ``ebxml-<errorCode>``;
- ``sequences/<name>/NN-<step>.<ext>`` with ``expect.toml``: messages run in order on one store.

Patients have synthetic national identity numbers only (``make_fnr``, Tenor month + 80).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import random
import re
import shutil
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lxml import etree

from gateway.claims.model import (
    BehandlerKrav,
    Code,
    Enkeltregning,
    HealthcareProfessional,
    Ident,
    MsgHead,
    Organisation,
    Takst,
)
from gateway.ebxml.namespaces import BKM_NS, EB_NS, MSGHEAD_NS, SOAP_NS
from gateway.receipts.apprec import AppRec, AppRecStatus, build_apprec, wrap_in_msghead
from gateway.testing.claims import (
    Practitioner,
    bkm_element,
    default_receiver,
    default_sender,
    make_bill,
    make_claim,
    msghead_with_bkm,
)
from gateway.testing.messages import Route, ebxml_message

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = PROJECT_ROOT / "fixtures"
GENERATED_DIRS = ("good", "bad", "sequences", "samples")

#: The ebXML Timestamp of every generated message (the tests run with 2026-11-23 12:00 UTC).
EBXML_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
#: A treatment time after the moment the claims are received (rule 766): years ahead, so that
#: the README sample shows 766 on a real clock too, not only on the tests' fixed one.
FUTURE = datetime(2030, 1, 7, 9, 0)
OUR_HER = "79768"
OTHER_HER = "80624"

_MH = f"{{{MSGHEAD_NS}}}"
_BKM = f"{{{BKM_NS}}}"
_EB = f"{{{EB_NS}}}"
_SOAP = f"{{{SOAP_NS}}}"

# --- senders ------------------------------------------------------------------------------------


def _professional(
    kind: str, text: str, hpr: str, family: str, given: str
) -> HealthcareProfessional:
    return HealthcareProfessional(
        type=Code(kind, text=text),
        family_name=family,
        given_name=given,
        idents=(Ident(hpr, "HPR"),),
    )


SENDERS: dict[str, Organisation] = {
    "tannlege": default_sender(
        "8141253",
        name="Speare AS",
        professional=_professional("TL", "Tannlege", "9144889", "Testesen", "Tone"),
    ),
    "lege": default_sender(
        "8141260",
        name="Testby legesenter",
        enh="974631407",
        professional=_professional("LE", "Lege", "9144900", "Prøvesen", "Per"),
    ),
    "psykolog": default_sender(
        "8141277",
        name="Fiktiv psykologpraksis",
        enh="974631415",
        professional=_professional("PS", "Psykolog", "9144911", "Eksempelsen", "Eva"),
    ),
    "lab": default_sender("8141284", name="Testlaboratoriet AS", enh="974631423"),
}


def route_for(practitioner: str, **changes: str) -> Route:
    """The ebXML route of ``practitioner``'s sender to us, with ``changes`` applied."""
    her = SENDERS[practitioner].idents[0].id
    route = Route(from_her=her, to_her=OUR_HER, mail_from=f"{practitioner}@avsender.test")
    return dataclasses.replace(route, **changes)


# --- building blocks ----------------------------------------------------------------------------


def seed_of(name: str) -> int:
    """A fixed seed per fixture name, independent of Python's hash randomisation."""
    return zlib.crc32(name.encode("utf-8"))


def rng_for(name: str) -> random.Random:
    """The generator of one fixture: deterministic test data, not cryptography."""
    return random.Random(seed_of(name))  # noqa: S311


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class Claim:
    """A MsgHead and its BehandlerKrav, plus the generator that made them."""

    head: MsgHead
    krav: BehandlerKrav
    rng: random.Random = field(compare=False)
    practitioner: Practitioner

    def payload(self, *, pretty: bool = False) -> bytes:
        return msghead_with_bkm(self.head, self.krav, pretty_print=pretty)

    def with_bills(
        self,
        bills: Sequence[Enkeltregning],
        *,
        antall: int | None = None,
        total: Decimal | None = None,
    ) -> Claim:
        """The same message with other bills; totals recomputed unless ``antall``/``total``."""
        krav = krav_of(bills, self.krav)
        if antall is not None:
            krav = dataclasses.replace(krav, antall_regninger=antall)
        if total is not None:
            krav = dataclasses.replace(krav, sum_krav_samlet=total)
        return dataclasses.replace(self, krav=krav)

    def next_message(self, minutes: int = 90) -> Claim:
        """A new message (new MsgId, later GenDate) from the same sender; same bills."""
        head = dataclasses.replace(
            self.head,
            msg_id=new_uuid(self.rng),
            gen_date=self.head.gen_date + timedelta(minutes=minutes),
        )
        return dataclasses.replace(self, head=head)


def krav_of(bills: Sequence[Enkeltregning], template: BehandlerKrav) -> BehandlerKrav:
    return dataclasses.replace(
        template,
        regninger=tuple(bills),
        antall_regninger=len(bills),
        sum_krav_samlet=sum((b.behandling.sum_refusjon for b in bills), Decimal("0.00")),
    )


def claim(
    name: str,
    practitioner: Practitioner,
    bills: int,
    start: datetime,
    *,
    receiver: Organisation | None = None,
) -> Claim:
    rng = rng_for(name)
    head, krav = make_claim(
        rng=rng,
        practitioner=practitioner,
        bills=bills,
        sender=SENDERS[practitioner],
        receiver=receiver or default_receiver(OUR_HER),
        start=start,
    )
    return Claim(head, krav, rng, practitioner)


def wrap(
    c: Claim,
    payload: bytes | None = None,
    *,
    compress: bool = False,
    ack: bool = True,
    route: Route | None = None,
    message_id: str | None = None,
    minutes: int = 0,
) -> bytes:
    """``c`` (or ``payload`` from ``c``'s sender) as an ebXML MIME message."""
    return ebxml_message(
        c.payload() if payload is None else payload,
        route=route or route_for(c.practitioner),
        message_id=message_id or f"{new_uuid(c.rng)}@{c.practitioner}.avsender.test",
        conversation_id=new_uuid(c.rng),
        timestamp=EBXML_TIME + timedelta(minutes=minutes),
        compress=compress,
        ack_requested=ack,
        rng=c.rng,
    )


def edit_xml(data: bytes, edit: Callable[[etree._Element], None]) -> bytes:
    """Parse our own generated XML, apply ``edit`` to the root, serialise it again."""
    root = etree.fromstring(data)
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def first(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path)
    if found is None:
        raise LookupError(path)
    return found


def remove(root: etree._Element, path: str) -> None:
    element = first(root, path)
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)


def bills_path(local: str) -> str:
    """An ElementPath from the MsgHead root to a child of the first Enkeltregning."""
    return f"{_MH}Document/{_MH}RefDoc/{_MH}Content/{_BKM}BehandlerKrav/{_BKM}Enkeltregning/{local}"


KRAV_PATH = f"{_MH}Document/{_MH}RefDoc/{_MH}Content/{_BKM}BehandlerKrav"


# --- MIME post-processing -----------------------------------------------------------------------


@dataclass(slots=True)
class MimeParts:
    """The bytes of a message from ``ebxml_message``, split so that parts can be edited.

    Part 0 is the SOAP envelope, part 1 the payload; bodies are held decoded and written back
    base64-encoded in 76-character lines, as ``mime.build`` writes them.
    """

    top: bytes
    boundary: bytes
    headers: list[bytes]
    bodies: list[bytes]

    @classmethod
    def split(cls, raw: bytes) -> MimeParts:
        match = re.search(rb'boundary="([^"]+)"', raw)
        assert match is not None
        boundary = match.group(1)
        delimiter = b"--" + boundary
        pieces = raw.split(delimiter)
        top, chunks, end = pieces[0], pieces[1:-1], pieces[-1]
        assert end == b"--\r\n", end
        headers: list[bytes] = []
        bodies: list[bytes] = []
        for chunk in chunks:
            head, _, body = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
            headers.append(head)
            bodies.append(base64.b64decode(body))
        return cls(top, boundary, headers, bodies)

    def render(self) -> bytes:
        delimiter = b"--" + self.boundary
        out = [self.top]
        for head, body in zip(self.headers, self.bodies, strict=True):
            encoded = base64.b64encode(body)
            lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)] or [b""]
            out.append(delimiter + b"\r\n" + head + b"\r\n\r\n" + b"\r\n".join(lines) + b"\r\n")
        out.append(delimiter + b"--\r\n")
        return b"".join(out)


def edit_envelope(raw: bytes, edit: Callable[[etree._Element], None]) -> bytes:
    parts = MimeParts.split(raw)
    parts.bodies[0] = edit_xml(parts.bodies[0], edit)
    return parts.render()


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    if data.count(old) != 1:
        raise ValueError(f"expected exactly one {old!r}")
    return data.replace(old, new)


# --- the corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fixture:
    path: str  # relative to fixtures/
    data: bytes
    description: str


@dataclass(frozen=True, slots=True)
class Step:
    file: str
    data: bytes
    outcome: str
    apprec_status: int | None = None
    codes: tuple[str, ...] = ()
    ot: tuple[str, ...] = ()
    ebxml_error: str | None = None
    acknowledgment: bool = False
    same_replies_as: str | None = None
    same_apprec_as: str | None = None
    #: The pipeline is known to answer otherwise (see the README); the test is an xfail.
    known_bug: str | None = None


@dataclass(frozen=True, slots=True)
class SequenceSpec:
    name: str
    description: str
    steps: tuple[Step, ...]


def good_fixtures() -> list[Fixture]:
    out: list[Fixture] = []

    def add(name: str, description: str, make: Callable[[str], bytes]) -> None:
        out.append(Fixture(f"good/{name}", make(name), description))

    def plain(
        practitioner: Practitioner,
        bills: int,
        start: datetime,
        *,
        compress: bool = False,
        ack: bool = True,
    ) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = claim(name, practitioner, bills, start)
            return wrap(c, compress=compress, ack=ack)

        return make

    add("tannlege-1bills.msg", "one dental bill", plain("tannlege", 1, datetime(2026, 9, 7, 8)))
    add("tannlege-3bills.msg", "three dental bills", plain("tannlege", 3, datetime(2026, 10, 5, 9)))
    add(
        "tannlege-12bills.msg",
        "twelve dental bills",
        plain("tannlege", 12, datetime(2026, 11, 2, 8)),
    )
    add(
        "tannlege-6bills-gzip.msg",
        "payload gzip-compressed (application/gzip)",
        plain("tannlege", 6, datetime(2026, 10, 19, 8), compress=True),
    )
    add("lege-1bills.msg", "one GP bill (LOM)", plain("lege", 1, datetime(2026, 9, 14, 10)))
    add("lege-5bills.msg", "five GP bills", plain("lege", 5, datetime(2026, 10, 12, 8)))
    add(
        "lege-50bills.msg",
        "fifty GP bills over a week",
        plain("lege", 50, datetime(2026, 11, 9, 8)),
    )
    add(
        "lege-2bills-noack.msg",
        "no eb:AckRequested: AppRec only, no acknowledgment",
        plain("lege", 2, datetime(2026, 11, 16, 13), ack=False),
    )

    def bare(name: str) -> bytes:
        return claim(name, "lege", 3, datetime(2026, 10, 26, 9)).payload()

    add("lege-3bills-bare.xml", "bare MsgHead without ebXML: bare AppRec .xml back", bare)

    def pretty(name: str) -> bytes:
        return claim(name, "psykolog", 4, datetime(2026, 11, 10, 9)).payload(pretty=True)

    add("psykolog-4bills-bare-pretty.xml", "bare, pretty-printed MsgHead", pretty)
    add(
        "psykolog-1bills.msg",
        "one psychologist bill",
        plain("psykolog", 1, datetime(2026, 9, 21, 9)),
    )
    add(
        "psykolog-8bills.msg",
        "eight psychologist bills with referrals",
        plain("psykolog", 8, datetime(2026, 10, 1, 9)),
    )
    add(
        "lab-4bills-nlk.msg",
        "laboratory, NLK analysis codes",
        plain("lab", 4, datetime(2026, 9, 28, 7)),
    )
    add(
        "lab-20bills-nlk.msg",
        "laboratory, twenty bills of NLK codes",
        plain("lab", 20, datetime(2026, 11, 3, 7)),
    )

    def clock_drift(name: str) -> bytes:
        # 5 minutes after the tests' moment of receipt (13:00 Oslo): within the 10 minutes'
        # clock tolerance of rule 766.
        c = claim(name, "lege", 1, datetime(2026, 11, 23, 13, 5))
        return wrap(c)

    add(
        "lege-1bills-clock-drift.msg",
        "DatoTid 5 minutes after receipt: within the 10 minutes' clock tolerance",
        clock_drift,
    )
    return out


def bad_fixtures() -> list[Fixture]:
    out: list[Fixture] = []

    def add(name: str, description: str, make: Callable[[str], bytes]) -> None:
        out.append(Fixture(f"bad/{name}", make(name), description))

    def base(name: str, bills: int = 3, practitioner: Practitioner = "tannlege") -> Claim:
        return claim(name, practitioner, bills, datetime(2026, 10, 6, 9))

    def xml_edit(
        edit: Callable[[etree._Element], None],
        *,
        bills: int = 3,
        practitioner: Practitioner = "tannlege",
        bare: bool = False,
    ) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = base(name, bills, practitioner)
            payload = edit_xml(c.payload(), edit)
            return payload if bare else wrap(c, payload)

        return make

    # --- not MIME, not XML: answered on the MIME level ---------------------------------------
    def random_bytes(name: str) -> bytes:
        rng = rng_for(name)
        data = rng.randbytes(4096)
        return b"\x00" + data[1:]  # never starts with "<", so it is not taken for XML

    add(
        "ebxml-MimeProblem--random-bytes.msg",
        "4 KiB of random bytes: not MIME, not XML",
        random_bytes,
    )

    def png(name: str) -> bytes:
        rng = rng_for(name)
        ihdr = b"\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00"
        return b"\x89PNG\r\n\x1a\n" + ihdr + rng.randbytes(1024)

    add("ebxml-MimeProblem--png-image.msg", "a PNG image dropped as a claim", png)
    add("ebxml-MimeProblem--empty-file.msg", "an empty file", lambda _name: b"")

    def plain_mail(name: str) -> bytes:
        return (
            b"From: behandler@avsender.test\r\nTo: mottak@kuhr.test\r\n"
            b"Subject: Refusjonskrav\r\nMessage-ID: <plain-1@avsender.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Hei, vedlagt er kravet for oktober.\r\n"
        )

    add(
        "ebxml-MimeProblem--plain-text-mail.msg",
        "a text/plain mail, not multipart/related",
        plain_mail,
    )

    def truncated_mime(name: str) -> bytes:
        raw = wrap(base(name))
        return raw[: len(raw) * 3 // 5]

    add(
        "ebxml-MimeProblem--truncated-mime.msg",
        "message cut at 60 %: no closing boundary",
        truncated_mime,
    )

    def unknown_charset(name: str) -> bytes:
        return replace_once(wrap(base(name)), b"charset=UTF-8", b"charset=x-klingon-8")

    add(
        "ebxml-MimeProblem--unknown-charset-envelope.msg",
        "SOAP envelope part declares charset x-klingon-8",
        unknown_charset,
    )

    def bad_base64(name: str) -> bytes:
        parts = MimeParts.split(wrap(base(name)))
        raw = parts.render()
        # Damage the payload part's base64 (the second part's third line).
        payload_start = raw.index(parts.headers[1]) + len(parts.headers[1]) + 4
        line_start = raw.index(b"\r\n", raw.index(b"\r\n", payload_start) + 2) + 2
        return raw[:line_start] + b"!!!!" + raw[line_start + 4 :]

    add("ebxml-MimeProblem--payload-bad-base64.msg", "payload part is not valid base64", bad_base64)

    def start_missing(name: str) -> bytes:
        raw = wrap(base(name))
        return re.sub(rb'start="<[^>]+>"', b'start="<ingen-slik-del@avsender.test>"', raw, count=1)

    add(
        "ebxml-MimeProblem--start-names-no-part.msg",
        "multipart/related start= names a Content-ID no part has",
        start_missing,
    )

    # --- the SOAP envelope --------------------------------------------------------------------
    def envelope_not_xml(name: str) -> bytes:
        parts = MimeParts.split(wrap(base(name)))
        parts.bodies[0] = b"Dette er ikke XML, bare tekst.\r\n"
        return parts.render()

    add("ebxml-OtherXml--envelope-not-xml.msg", "SOAP part is plain text", envelope_not_xml)

    def envelope_truncated(name: str) -> bytes:
        parts = MimeParts.split(wrap(base(name)))
        parts.bodies[0] = parts.bodies[0][: len(parts.bodies[0]) // 2]
        return parts.render()

    add(
        "ebxml-OtherXml--envelope-truncated.msg",
        "SOAP envelope XML cut in half",
        envelope_truncated,
    )

    def envelope_is_msghead(name: str) -> bytes:
        c = base(name)
        parts = MimeParts.split(wrap(c))
        parts.bodies[0] = c.payload()
        return parts.render()

    add(
        "ebxml-OtherXml--envelope-is-msghead.msg",
        "SOAP part holds the MsgHead instead of a SOAP:Envelope",
        envelope_is_msghead,
    )

    def envelope_doctype(name: str) -> bytes:
        parts = MimeParts.split(wrap(base(name)))
        body = parts.bodies[0]
        declaration_end = body.index(b"?>") + 2
        parts.bodies[0] = (
            body[:declaration_end]
            + b'\n<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            + body[declaration_end:]
        )
        return parts.render()

    add(
        "ebxml-OtherXml--envelope-xxe-doctype.msg",
        "SOAP envelope with a DOCTYPE declaring a file:///etc/passwd entity",
        envelope_doctype,
    )

    def wrong_route(**changes: str) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = base(name)
            return wrap(c, route=route_for(c.practitioner, **changes))

        return make

    add(
        "ebxml-ValueNotRecognized--wrong-to-her.msg",
        f"eb:To PartyId HER {OTHER_HER}, not ours",
        wrong_route(to_her=OTHER_HER),
    )
    add(
        "ebxml-ValueNotRecognized--wrong-service.msg",
        "eb:Service Dialogmelding",
        wrong_route(service="Dialogmelding"),
    )
    add(
        "ebxml-ValueNotRecognized--wrong-action.msg",
        "eb:Action Svarmelding (the action of our replies)",
        wrong_route(action="Svarmelding"),
    )

    def envelope_edit(edit: Callable[[etree._Element], None]) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            return edit_envelope(wrap(base(name)), edit)

        return make

    def bad_timestamp(root: etree._Element) -> None:
        first(root, f".//{_EB}MessageData/{_EB}Timestamp").text = "i går"

    add(
        "ebxml-ValueNotRecognized--bad-timestamp.msg",
        'eb:Timestamp "i går"',
        envelope_edit(bad_timestamp),
    )

    def missing_part(name: str) -> bytes:
        parts = MimeParts.split(wrap(base(name)))
        parts.headers[1] = re.sub(
            rb"Content-ID: <[^>]+>", b"Content-ID: <en-annen-del@avsender.test>", parts.headers[1]
        )
        return parts.render()

    add(
        "ebxml-Inconsistent--manifest-points-to-missing-part.msg",
        "eb:Manifest references a cid no MIME part has",
        missing_part,
    )

    def no_cpa(root: etree._Element) -> None:
        remove(root, f".//{_EB}MessageHeader/{_EB}CPAId")

    add("ebxml-Inconsistent--missing-cpaid.msg", "eb:CPAId left out", envelope_edit(no_cpa))

    def no_manifest(root: etree._Element) -> None:
        remove(root, f"{_SOAP}Body/{_EB}Manifest")

    add(
        "ebxml-Inconsistent--no-manifest.msg",
        "SOAP:Body without eb:Manifest: no payload reference",
        envelope_edit(no_manifest),
    )

    def encrypted(name: str) -> bytes:
        c = base(name)
        rng = rng_for(name)
        der = b"\x30\x82\x10\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03" + rng.randbytes(4096)
        raw = wrap(c, der)
        return replace_once(
            raw,
            b"Content-Type: text/xml\r\n",
            b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data;"
            b' name="smime.p7m"\r\n',
        )

    add(
        "ebxml-NotSupported--encrypted-payload.msg",
        "payload part application/pkcs7-mime (CMS enveloped data)",
        encrypted,
    )

    def ebms_3(root: etree._Element) -> None:
        first(root, f".//{_EB}MessageHeader").set(f"{_EB}version", "3.0")

    add(
        "ebxml-NotSupported--ebms-version-3.msg",
        'eb:MessageHeader eb:version="3.0"',
        envelope_edit(ebms_3),
    )

    def must_understand(root: etree._Element) -> None:
        header = first(root, f"{_SOAP}Header")
        block = etree.SubElement(header, "{urn:example:routing}Prioritet")
        block.set(f"{_SOAP}mustUnderstand", "1")
        block.text = "hast"

    add(
        "ebxml-NotSupported--unknown-mustunderstand-header.msg",
        "an unknown SOAP header block with mustUnderstand=1",
        envelope_edit(must_understand),
    )

    # --- T01: the payload is not (acceptable) XML ---------------------------------------------
    def truncated_payload(name: str) -> bytes:
        c = base(name)
        payload = c.payload()
        return wrap(c, payload[: len(payload) // 2])

    add(
        "apprec-2-T01--payload-truncated.msg",
        "MsgHead cut in half inside a sound MIME package",
        truncated_payload,
    )

    def truncated_bare(name: str) -> bytes:
        payload = base(name).payload()
        return payload[: len(payload) * 2 // 3]

    add("apprec-2-T01--truncated.xml", "bare MsgHead cut at two thirds", truncated_bare)

    def with_doctype(payload: bytes, doctype: bytes, name_text: bytes | None = None) -> bytes:
        declaration_end = payload.index(b"?>") + 2
        payload = payload[:declaration_end] + b"\n" + doctype + payload[declaration_end:]
        if name_text is not None:
            payload = re.sub(
                rb"<OrganisationName>[^<]*</OrganisationName>",
                b"<OrganisationName>" + name_text + b"</OrganisationName>",
                payload,
                count=1,
            )
        return payload

    def xxe(bare: bool) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = base(name)
            payload = with_doctype(
                c.payload(),
                b'<!DOCTYPE MsgHead [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
                b"&xxe;",
            )
            return payload if bare else wrap(c, payload)

        return make

    add(
        "apprec-2-T01--xxe-file-entity.msg",
        "DOCTYPE with SYSTEM entity file:///etc/passwd",
        xxe(False),
    )
    add("apprec-2-T01--xxe-file-entity.xml", "the same, as a bare MsgHead", xxe(True))

    def billion_laughs(name: str) -> bytes:
        c = base(name)
        entities = [b'<!ENTITY lol "lol">']
        entities += [
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
            for i in range(1, 10)
        ]
        doctype = b"<!DOCTYPE MsgHead [\n " + b"\n ".join(entities) + b"\n]>"
        return wrap(c, with_doctype(c.payload(), doctype, b"&lol9;"))

    add(
        "apprec-2-T01--billion-laughs.msg",
        "nested entities expanding to 10^9 'lol's",
        billion_laughs,
    )

    def external_dtd(name: str) -> bytes:
        c = base(name)
        doctype = b'<!DOCTYPE MsgHead SYSTEM "http://dtd.avsender.test/msghead.dtd">'
        return wrap(c, with_doctype(c.payload(), doctype))

    add("apprec-2-T01--external-dtd.msg", "DOCTYPE naming an external DTD over http", external_dtd)

    def gzip_bomb(name: str) -> bytes:
        c = base(name)
        payload = c.payload()
        body_start = payload.index(b"<MsgHead")
        # 11 MiB of spaces before the root element: gzips to about 11 KB.
        huge = payload[:body_start] + b" " * (11 * 1024 * 1024) + payload[body_start:]
        return wrap(c, huge, compress=True)

    add(
        "apprec-2-T01--gzip-bomb.msg",
        "gzip payload that unpacks to more than 10 MiB",
        gzip_bomb,
    )

    def bad_gzip(name: str) -> bytes:
        c = base(name)
        parts = MimeParts.split(wrap(c, compress=True))
        body = parts.bodies[1]
        parts.bodies[1] = body[:20] + bytes(b ^ 0x5A for b in body[20:60]) + body[60:]
        return parts.render()

    add("apprec-2-T01--gzip-corrupt.msg", "gzip payload with damaged deflate data", bad_gzip)

    def latin1(name: str) -> bytes:
        c = base(name, practitioner="lege")
        # Declared UTF-8 (by the XML declaration) but written in ISO-8859-1.
        return wrap(c, c.payload().decode("utf-8").encode("iso-8859-1"))

    add(
        "apprec-2-T01--latin1-declared-utf8.msg",
        "payload declared UTF-8 but encoded ISO-8859-1 (æøå)",
        latin1,
    )

    def binary_payload(name: str) -> bytes:
        c = base(name)
        rng = rng_for(name)
        return wrap(c, b"\x00" + rng.randbytes(2048))

    add("apprec-2-T01--binary-payload.msg", "payload part holds random bytes", binary_payload)

    # --- T02: XML, but not valid ----------------------------------------------------------------
    add(
        "apprec-2-T02--missing-guid.msg",
        "first Enkeltregning has no Guid",
        xml_edit(lambda r: remove(r, bills_path(f"{_BKM}Guid"))),
    )
    add(
        "apprec-2-T02--missing-guid.xml",
        "the same, as a bare MsgHead",
        xml_edit(lambda r: remove(r, bills_path(f"{_BKM}Guid")), bare=True),
    )
    add(
        "apprec-2-T02--missing-sumkrav.msg",
        "first bill's Behandling has no SumKrav",
        xml_edit(lambda r: remove(r, bills_path(f"{_BKM}Behandling/{_BKM}SumKrav"))),
    )
    add(
        "apprec-2-T02--missing-datotid.msg",
        "first bill has no DatoTid",
        xml_edit(lambda r: remove(r, bills_path(f"{_BKM}DatoTid"))),
    )
    add(
        "apprec-2-T02--missing-msgid.msg",
        "MsgHead MsgInfo without MsgId",
        xml_edit(lambda r: remove(r, f"{_MH}MsgInfo/{_MH}MsgId")),
    )
    add(
        "apprec-2-T02--missing-krav-totals.msg",
        "BehandlerKrav without Krav (AntallRegninger, SumKravSamlet)",
        xml_edit(lambda r: remove(r, f"{KRAV_PATH}/{_BKM}Krav")),
    )

    def set_text(path: str, text: str) -> Callable[[etree._Element], None]:
        def edit(root: etree._Element) -> None:
            first(root, path).text = text

        return edit

    def set_attr(path: str, name: str, value: str) -> Callable[[etree._Element], None]:
        def edit(root: etree._Element) -> None:
            first(root, path).set(name, value)

        return edit

    add(
        "apprec-2-T02--datotid-yesterday.msg",
        'DatoTid "yesterday"',
        xml_edit(set_text(bills_path(f"{_BKM}DatoTid"), "yesterday")),
    )
    add(
        "apprec-2-T02--datotid-norwegian-format.msg",
        'DatoTid "06.10.2026 09:00" (not xs:dateTime)',
        xml_edit(set_text(bills_path(f"{_BKM}DatoTid"), "06.10.2026 09:00")),
    )
    add(
        "apprec-2-T02--amount-with-comma.msg",
        'Takst Verdi V="12,50"',
        xml_edit(set_attr(bills_path(f"{_BKM}Behandling/{_BKM}Takst/{_BKM}Verdi"), "V", "12,50")),
    )
    add(
        "apprec-2-T02--amount-three-decimals.msg",
        'SumKrav Refusjon V="245.005"',
        xml_edit(
            set_attr(bills_path(f"{_BKM}Behandling/{_BKM}SumKrav/{_BKM}Refusjon"), "V", "245.005")
        ),
    )
    add(
        "apprec-2-T02--amount-negative.msg",
        'Takst Verdi V="-245.00"',
        xml_edit(set_attr(bills_path(f"{_BKM}Behandling/{_BKM}Takst/{_BKM}Verdi"), "V", "-245.00")),
    )
    add(
        "apprec-2-T02--antall-zero.msg",
        "Takst Antall 0",
        xml_edit(set_text(bills_path(f"{_BKM}Behandling/{_BKM}Takst/{_BKM}Antall"), "0")),
    )
    add(
        "apprec-2-T02--kreditering-not-boolean.msg",
        'Kreditering "nei"',
        xml_edit(set_text(bills_path(f"{_BKM}Kreditering"), "nei")),
    )

    def konto_junk(root: etree._Element) -> None:
        krav = first(root, KRAV_PATH)
        konto = etree.Element(f"{_BKM}Konto")
        konto.text = "1234.56.78903"
        etree.SubElement(konto, f"{_BKM}Søppel").text = "x"
        krav.insert(0, konto)

    add(
        "apprec-2-T02--konto-with-junk-child.msg",
        "Konto (xs:string) with a child element",
        xml_edit(konto_junk),
    )

    def unknown_element(root: etree._Element) -> None:
        bill = first(root, f"{KRAV_PATH}/{_BKM}Enkeltregning")
        etree.SubElement(bill, f"{_BKM}Rabatt").text = "10"

    add(
        "apprec-2-T02--unknown-element.msg",
        "Enkeltregning ends with an unknown Rabatt element",
        xml_edit(unknown_element),
    )

    def out_of_order(root: etree._Element) -> None:
        regning_nr = first(root, bills_path(f"{_BKM}RegningNr"))
        kreditering = first(root, bills_path(f"{_BKM}Kreditering"))
        kreditering.addprevious(regning_nr)

    add(
        "apprec-2-T02--elements-out-of-order.msg",
        "RegningNr before Kreditering",
        xml_edit(out_of_order),
    )

    def bkm_namespace(name: str) -> bytes:
        c = base(name)
        other = BKM_NS.replace("2006-12-20", "2099-01-01")
        return wrap(c, replace_once(c.payload(), BKM_NS.encode(), other.encode()))

    add(
        "apprec-2-T10--bkm-unknown-namespace.msg",
        "BehandlerKrav in namespace bkm/2099-01-01: not a message type we take",
        bkm_namespace,
    )

    # --- T10: well-formed, but not a message type we receive ------------------------------------
    def msghead_namespace(name: str) -> bytes:
        c = base(name)
        other = MSGHEAD_NS.replace("2006-05-24", "2099-01-01")
        return wrap(c, replace_once(c.payload(), MSGHEAD_NS.encode(), other.encode()))

    add(
        "apprec-2-T10--msghead-unknown-namespace.msg",
        "MsgHead in namespace msghead/2099-01-01",
        msghead_namespace,
    )

    def apprec_to_us(name: str) -> bytes:
        c = base(name)
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
        return wrap(c, etree.tostring(carrier, xml_declaration=True, encoding="UTF-8"))

    add(
        "apprec-2-T10--apprec-sent-to-us.msg",
        "a MsgHead of type APPREC carrying an AppRec",
        apprec_to_us,
    )

    def bare_bkm(name: str) -> bytes:
        c = base(name)
        return etree.tostring(bkm_element(c.krav), xml_declaration=True, encoding="UTF-8")

    add("apprec-2-T10--bare-behandlerkrav.xml", "a BehandlerKrav without MsgHead", bare_bkm)

    # --- E21: MsgHead addressed to someone else ------------------------------------------------
    def not_our_receiver(bare: bool) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = claim(
                name, "lege", 2, datetime(2026, 10, 6, 9), receiver=default_receiver(OTHER_HER)
            )
            return c.payload() if bare else wrap(c)

        return make

    add(
        "apprec-2-E21--msghead-receiver-not-us.msg",
        f"ebXML To is us, MsgHead Receiver is HER {OTHER_HER}",
        not_our_receiver(False),
    )
    add(
        "apprec-2-E21--msghead-receiver-not-us.xml",
        f"bare MsgHead to HER {OTHER_HER}",
        not_our_receiver(True),
    )

    # --- message rules ------------------------------------------------------------------------
    def antall(value: int) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = base(name, bills=4, practitioner="lege")
            return wrap(c.with_bills(c.krav.regninger, antall=value))

        return make

    def sum_plus(delta: str) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = base(name, bills=4, practitioner="lege")
            wrong = c.krav.sum_krav_samlet + Decimal(delta)
            return wrap(c.with_bills(c.krav.regninger, total=wrong))

        return make

    add(
        "apprec-2-SUMKRAV--sumkravsamlet-100-too-high.msg",
        "SumKravSamlet 100 kr more than the bills",
        sum_plus("100.00"),
    )
    add(
        "apprec-2-SUMKRAV--sumkravsamlet-1-ore-short.msg",
        "SumKravSamlet 0.01 kr less than the bills",
        sum_plus("-0.01"),
    )
    add("apprec-2-ANTALLREGNINGER--one-too-many.msg", "AntallRegninger 5 for 4 bills", antall(5))
    add("apprec-2-ANTALLREGNINGER--one-too-few.msg", "AntallRegninger 3 for 4 bills", antall(3))

    # --- bill rules ---------------------------------------------------------------------------
    def future(indexes: Iterable[int], bills: int) -> Callable[[str], bytes]:
        wanted = set(indexes)

        def make(name: str) -> bytes:
            c = base(name, bills=bills, practitioner="psykolog")
            regninger = [
                dataclasses.replace(b, dato_tid=FUTURE + timedelta(hours=i)) if i in wanted else b
                for i, b in enumerate(c.krav.regninger)
            ]
            return wrap(c.with_bills(regninger))

        return make

    add(
        "apprec-3-766--one-of-four-bills-in-future.msg",
        "bill 3 of 4 dated 2030-01-07",
        future([2], 4),
    )
    add(
        "apprec-3-766--two-of-five-bills-in-future.msg",
        "bills 1 and 5 of 5 dated 2030-01-07",
        future([0, 4], 5),
    )
    add("apprec-2-766--all-bills-in-future.msg", "both bills dated 2030-01-07", future([0, 1], 2))

    def same_guid(copies: int) -> Callable[[str], bytes]:
        def make(name: str) -> bytes:
            c = base(name, bills=4, practitioner="lab")
            bills = list(c.krav.regninger)
            for i in range(1, copies):
                bills[i] = dataclasses.replace(bills[i], guid=bills[0].guid)
            return wrap(c.with_bills(bills))

        return make

    add(
        "apprec-3-DUPLIKAT--same-guid-twice-in-message.msg",
        "bills 1 and 2 share a Guid",
        same_guid(2),
    )
    add(
        "apprec-3-DUPLIKAT--same-guid-three-times.msg",
        "bills 1, 2 and 3 share a Guid",
        same_guid(3),
    )
    return out


# --- sequences ------------------------------------------------------------------------------------


def credit_of(bill: Enkeltregning) -> Enkeltregning:
    return dataclasses.replace(bill, kreditering=True)


def sequences() -> list[SequenceSpec]:
    out: list[SequenceSpec] = []
    start = datetime(2026, 10, 13, 9)

    # The same file twice: the second is answered with the stored replies, byte for byte.
    c = claim("same-message-twice", "lege", 3, start)
    first_msg = wrap(c)
    out.append(
        SequenceSpec(
            "same-message-twice",
            "the same ebXML message twice: the stored replies again, byte-identical",
            (
                Step("01-claim.msg", first_msg, "accepted", 1, acknowledgment=True),
                Step(
                    "02-same-claim-again.msg",
                    first_msg,
                    "duplicate",
                    acknowledgment=True,
                    same_replies_as="01-claim.msg",
                ),
            ),
        )
    )

    # The same MsgHead in a new ebXML message (a resend by the sender's EPJ).
    c = claim("msghead-resent-new-ebxml-id", "tannlege", 2, start)
    out.append(
        SequenceSpec(
            "msghead-resent-new-ebxml-id",
            "the same MsgHead (sender HER + MsgId) in a new ebXML message: the stored AppRec "
            "again, with a new acknowledgment",
            (
                Step("01-claim.msg", wrap(c), "accepted", 1, acknowledgment=True),
                Step(
                    "02-same-msghead-new-messageid.msg",
                    wrap(c, minutes=30),
                    "duplicate",
                    acknowledgment=True,
                    same_apprec_as="01-claim.msg",
                ),
            ),
        )
    )

    # Bare MsgHead twice.
    c = claim("bare-msghead-twice", "psykolog", 2, start)
    out.append(
        SequenceSpec(
            "bare-msghead-twice",
            "the same bare MsgHead twice: the stored AppRec again",
            (
                Step("01-claim.xml", c.payload(), "accepted", 1),
                Step(
                    "02-same-claim-again.xml",
                    c.payload(),
                    "duplicate",
                    same_apprec_as="01-claim.xml",
                ),
            ),
        )
    )

    # An approved bill, then its whole credit.
    c = claim("approve-then-credit", "tannlege", 2, start)
    credit = c.next_message().with_bills([credit_of(c.krav.regninger[0])])
    out.append(
        SequenceSpec(
            "approve-then-credit",
            "two approved bills, then a credit of the first, whole: approved",
            (
                Step("01-claim.msg", wrap(c), "accepted", 1, acknowledgment=True),
                Step(
                    "02-credit-whole-bill.msg",
                    wrap(credit, minutes=90),
                    "accepted",
                    1,
                    acknowledgment=True,
                ),
            ),
        )
    )

    # A credit of a bill never received.
    c = claim("credit-unknown-bill", "lege", 2, start)
    rng = rng_for("credit-unknown-bill/stranger")
    stranger = make_bill(
        rng=rng, practitioner="lege", dato_tid=datetime(2026, 10, 2, 10), regning_nr="77001"
    )
    credit = c.next_message().with_bills([credit_of(stranger)])
    out.append(
        SequenceSpec(
            "credit-unknown-bill",
            "a credit of a bill that was never received: rejected (KREDITERING)",
            (
                Step("01-claim.msg", wrap(c), "accepted", 1, acknowledgment=True),
                Step(
                    "02-credit-unknown-bill.msg",
                    wrap(credit, minutes=90),
                    "rejected",
                    2,
                    codes=("KREDITERING",),
                    ot=("77001",),
                    acknowledgment=True,
                ),
            ),
        )
    )

    # A partial credit: other amount, plus an ordinary new bill.
    c = claim("partial-credit", "lege", 2, start)
    original = c.krav.regninger[0]
    takster = list(original.behandling.takster)
    takster[0] = Takst(takster[0].kode, takster[0].verdi, takster[0].antall + 1)
    changed = dataclasses.replace(
        original.behandling,
        takster=tuple(takster),
        sum_refusjon=sum((t.verdi * t.antall for t in takster), Decimal("0.00")),
    )
    partial = dataclasses.replace(credit_of(original), behandling=changed)
    fresh = make_bill(
        rng=c.rng,
        practitioner="lege",
        dato_tid=datetime(2026, 10, 20, 11),
        regning_nr="88001",
    )
    second = c.next_message().with_bills([partial, fresh])
    out.append(
        SequenceSpec(
            "partial-credit",
            "a credit that changes a takst (not the whole bill) next to a new bill: "
            "status 3, KREDITERING on the credit",
            (
                Step("01-claim.msg", wrap(c), "accepted", 1, acknowledgment=True),
                Step(
                    "02-partial-credit-and-new-bill.msg",
                    wrap(second, minutes=90),
                    "partially_accepted",
                    3,
                    codes=("KREDITERING",),
                    ot=(original.regning_nr,),
                    acknowledgment=True,
                ),
            ),
        )
    )

    # A bill re-sent in a new message with the same Guid.
    c = claim("bill-resent-same-guid", "psykolog", 2, start)
    resent = c.krav.regninger[1]
    fresh = make_bill(
        rng=c.rng,
        practitioner="psykolog",
        dato_tid=datetime(2026, 10, 21, 9),
        regning_nr="66001",
    )
    second = c.next_message().with_bills([resent, fresh])
    out.append(
        SequenceSpec(
            "bill-resent-same-guid",
            "an approved bill sent again (same Guid) in a new message with a new bill: "
            "status 3, DUPLIKAT on the resent bill",
            (
                Step("01-claim.msg", wrap(c), "accepted", 1, acknowledgment=True),
                Step(
                    "02-resent-bill-and-new-bill.msg",
                    wrap(second, minutes=90),
                    "partially_accepted",
                    3,
                    codes=("DUPLIKAT",),
                    ot=(resent.regning_nr,),
                    acknowledgment=True,
                ),
            ),
        )
    )

    # Credit twice.
    c = claim("credit-twice", "tannlege", 1, start)
    credit = c.next_message().with_bills([credit_of(c.krav.regninger[0])])
    again = credit.next_message()
    out.append(
        SequenceSpec(
            "credit-twice",
            "a bill, its credit, then the same credit in a new message: rejected (KREDITERING)",
            (
                Step("01-claim.msg", wrap(c), "accepted", 1, acknowledgment=True),
                Step("02-credit.msg", wrap(credit, minutes=90), "accepted", 1, acknowledgment=True),
                Step(
                    "03-credit-again.msg",
                    wrap(again, minutes=180),
                    "rejected",
                    2,
                    codes=("KREDITERING",),
                    ot=(c.krav.regninger[0].regning_nr,),
                    acknowledgment=True,
                ),
            ),
        )
    )

    # A MessageError does not record the message: a corrected retry with the same id is new.
    c = claim("retry-after-message-error", "lab", 3, start)
    message_id = f"{new_uuid(c.rng)}@lab.avsender.test"
    wrong = wrap(c, route=route_for("lab", to_her=OTHER_HER), message_id=message_id)
    right = wrap(c, message_id=message_id, minutes=5)
    out.append(
        SequenceSpec(
            "retry-after-message-error",
            "wrong eb:To (MessageError), then the corrected message with the same MessageId: "
            "processed afresh",
            (
                Step(
                    "01-wrong-to-her.msg",
                    wrong,
                    "ebxml_error",
                    ebxml_error="ValueNotRecognized",
                ),
                Step("02-corrected.msg", right, "accepted", 1, acknowledgment=True),
            ),
        )
    )

    # The same ebXML MessageId with other content.
    c = claim("messageid-reused-other-content", "lege", 2, start)
    message_id = f"{new_uuid(c.rng)}@lege.avsender.test"
    other = claim("messageid-reused-other-content/other", "lege", 1, datetime(2026, 10, 14, 9))
    out.append(
        SequenceSpec(
            "messageid-reused-other-content",
            "a second message reusing an accepted message's MessageId with other content: "
            "MessageError Inconsistent",
            (
                Step(
                    "01-claim.msg",
                    wrap(c, message_id=message_id),
                    "accepted",
                    1,
                    acknowledgment=True,
                ),
                Step(
                    "02-other-claim-same-messageid.msg",
                    wrap(other, message_id=message_id, minutes=60),
                    "ebxml_error",
                    ebxml_error="Inconsistent",
                ),
            ),
        )
    )

    # Re-billing a credited bill with its old Guid (the rule's guidance asks for a new Guid).
    c = claim("rebill-after-credit", "tannlege", 1, start)
    credit = c.next_message().with_bills([credit_of(c.krav.regninger[0])])
    rebill = credit.next_message().with_bills([c.krav.regninger[0]])
    out.append(
        SequenceSpec(
            "rebill-after-credit",
            "a bill, its whole credit, then the same bill (same Guid) again: approved, since "
            "the credited original is no longer live",
            (
                Step("01-claim.msg", wrap(c), "accepted", 1, acknowledgment=True),
                Step("02-credit.msg", wrap(credit, minutes=90), "accepted", 1, acknowledgment=True),
                Step(
                    "03-same-bill-again.msg",
                    wrap(rebill, minutes=180),
                    "accepted",
                    1,
                    acknowledgment=True,
                ),
            ),
        )
    )

    # A bill rejected for its date, sent again with the date corrected and the same Guid.
    c = claim("rejected-bill-corrected", "lege", 3, start)
    late = dataclasses.replace(c.krav.regninger[2], dato_tid=FUTURE)
    first_claim = c.with_bills([*c.krav.regninger[:2], late])
    fixed = dataclasses.replace(late, dato_tid=datetime(2026, 10, 16, 14))
    second = first_claim.next_message().with_bills([fixed])
    out.append(
        SequenceSpec(
            "rejected-bill-corrected",
            "a bill rejected for 766, sent again with the date corrected and the same Guid: "
            "approved (only approved bills count as duplicates)",
            (
                Step(
                    "01-claim-one-bill-in-future.msg",
                    wrap(first_claim),
                    "partially_accepted",
                    3,
                    codes=("766",),
                    ot=(late.regning_nr,),
                    acknowledgment=True,
                ),
                Step(
                    "02-corrected-bill.msg",
                    wrap(second, minutes=90),
                    "accepted",
                    1,
                    acknowledgment=True,
                ),
            ),
        )
    )

    # Another claim under the MsgId of an accepted one (an EPJ that reuses MsgIds).
    c = claim("msgid-reused-other-content", "lege", 2, start)
    other = claim("msgid-reused-other-content/other", "lege", 3, datetime(2026, 10, 19, 9))
    other = dataclasses.replace(other, head=dataclasses.replace(other.head, msg_id=c.head.msg_id))
    out.append(
        SequenceSpec(
            "msgid-reused-other-content",
            "a different claim (other bills) reusing an accepted message's MsgHead MsgId in a "
            "new ebXML message: must be rejected, not answered with the first claim's AppRec",
            (
                Step("01-claim.msg", wrap(c), "accepted", 1, acknowledgment=True),
                Step(
                    "02-other-claim-same-msgid.msg",
                    wrap(other, minutes=60),
                    "rejected",
                    2,
                    codes=("E10",),
                    acknowledgment=True,
                ),
            ),
        )
    )
    return out


# --- samples, README, writing ---------------------------------------------------------------------

#: Sample name -> corpus file it copies (for ``make run``'s first spool).
SAMPLES: dict[str, str] = {
    "tannlege-3-regninger.msg": "good/tannlege-3bills.msg",
    "lege-5-regninger.msg": "good/lege-5bills.msg",
    "feil-skjema-mangler-guid.msg": "bad/apprec-2-T02--missing-guid.msg",
    "feil-dato-frem-i-tid.msg": "bad/apprec-3-766--one-of-four-bills-in-future.msg",
    "feil-sumkrav.msg": "bad/apprec-2-SUMKRAV--sumkravsamlet-100-too-high.msg",
}


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def expect_toml(sequence: SequenceSpec) -> str:
    lines = [
        "# Written by tools/make_fixtures.py; run the steps in order on one store.",
        f"description = {_toml_string(sequence.description)}",
    ]
    for step in sequence.steps:
        lines += ["", "[[steps]]", f"file = {_toml_string(step.file)}"]
        lines.append(f"outcome = {_toml_string(step.outcome)}")
        if step.apprec_status is not None:
            lines.append(f"apprec_status = {step.apprec_status}")
        if step.codes:
            lines.append(f"codes = [{', '.join(_toml_string(c) for c in step.codes)}]")
        if step.ot:
            lines.append(f"ot = [{', '.join(_toml_string(o) for o in step.ot)}]")
        if step.ebxml_error is not None:
            lines.append(f"ebxml_error = {_toml_string(step.ebxml_error)}")
        lines.append(f"acknowledgment = {'true' if step.acknowledgment else 'false'}")
        if step.same_replies_as is not None:
            lines.append(f"same_replies_as = {_toml_string(step.same_replies_as)}")
        if step.same_apprec_as is not None:
            lines.append(f"same_apprec_as = {_toml_string(step.same_apprec_as)}")
        if step.known_bug is not None:
            lines.append(f"known_bug = {_toml_string(step.known_bug)}")
    return "\n".join(lines) + "\n"


_README_HEAD = """\
# Fixtures: a corpus of good and bad claim messages

Written by `tools/make_fixtures.py` from fixed seeds, timestamps and ids; do not edit by hand.
Regenerate (a re-run gives byte-identical files) with:

```sh
.venv/bin/python tools/make_fixtures.py
```

`tests/test_corpus.py` runs every file through the pipeline, with the clock at
2026-11-23 12:00 UTC (13:00 in Oslo) and a fresh store per file (one store per sequence), and
checks exactly the outcome its name promises: the AppRec status and error code (the per-bill
error's `OT` naming the offending bill's RegningNr), or the ebXML `MessageError` errorCode; that
every AppRec's signature verifies and validates against the project schemas; and that the
original bytes are kept in the store. It also regenerates the corpus into a temporary directory
and compares it with these files.

All patients have synthetic fødselsnummer (Tenor convention: month + 80). Treatment dates are in
September to November 2026; the ebXML timestamps are 2026-11-20.

## Naming

- `good/<practitioner>-<n>bills[-variant].<ext>`: `<practitioner>` is `tannlege`, `lege`,
  `psykolog` or `lab` (NLK analysis codes). Expected: AppRec status 1, and an ebXML
  `Acknowledgment` when the message asks for one (all `.msg` except `-noack`).
- `bad/<expect>--<description>.<ext>`, where `<expect>` is
  - `apprec-<status>-<code>`: an AppRec with `Status V=<status>` and `<code>` among its
    `Error V` values (`T01`, `T02`, `T10`, `E21` from KITH 8221; rule codes `SUMKRAV`,
    `ANTALLREGNINGER`, `766`, `DUPLIKAT`, `KREDITERING`), or
  - `ebxml-<errorCode>`: an ebXML `MessageError` with that `eb:errorCode` (`MimeProblem`,
    `OtherXml`, `ValueNotRecognized`, `Inconsistent`, `NotSupported`) and no AppRec.
- `<ext>`: `.msg` is an ebXML MIME message (answered with `.eml` replies); `.xml` is a bare
  MsgHead (answered with a bare signed AppRec `.xml`). The pipeline does not look at the
  extension: a file that does not start with `<` is taken for MIME.
- `sequences/<name>/NN-<step>.<ext>`: messages run in order on one store; `expect.toml` gives
  each step's `outcome` (`accepted`, `partially_accepted`, `rejected`, `duplicate`,
  `ebxml_error`), `apprec_status`, `codes`, `ot` (RegningNr of the rejected bills),
  `ebxml_error`, `acknowledgment`, and for duplicates `same_replies_as` (all replies
  byte-identical to that step's) or `same_apprec_as` (the AppRec byte-identical).
- `samples/`: plain-named copies for the README quick start (`make run` drops them into the
  spool).
"""


def readme(good: Sequence[Fixture], bad: Sequence[Fixture], seqs: Sequence[SequenceSpec]) -> str:
    lines = [_README_HEAD, "## Good fixtures", "", "| file | what |", "|---|---|"]
    lines += [f"| `{Path(f.path).name}` | {f.description} |" for f in good]
    lines += ["", "## Bad fixtures", "", "| file | expected | what it tests |", "|---|---|---|"]
    for f in bad:
        name = Path(f.path).name
        expect = name.split("--", 1)[0]
        lines.append(f"| `{name}` | `{expect}` | {f.description} |")
    lines += ["", "## Sequences", "", "| sequence | steps | what |", "|---|---|---|"]
    for s in seqs:
        steps = "; ".join(
            f"`{step.file}` → {step.outcome}"
            + (f" {step.apprec_status}" if step.apprec_status is not None else "")
            + (f" {'/'.join(step.codes)}" if step.codes else "")
            + (f" {step.ebxml_error}" if step.ebxml_error else "")
            + (" (**known bug**, xfail)" if step.known_bug else "")
            for step in s.steps
        )
        lines.append(f"| `{s.name}` | {steps} | {s.description} |")
    bugs = [(s.name, step) for s in seqs for step in s.steps if step.known_bug]
    if bugs:
        lines += ["", "Known pipeline bugs (the step is an expected failure until fixed):", ""]
        lines += [f"- `{name}/{step.file}`: {step.known_bug}." for name, step in bugs]
    lines += ["", "## Samples", "", "| file | copy of |", "|---|---|"]
    lines += [f"| `{name}` | `{source}` |" for name, source in SAMPLES.items()]
    return "\n".join(lines) + "\n"


def corpus() -> dict[str, bytes]:
    """Every generated file, by path relative to ``fixtures/``."""
    good, bad, seqs = good_fixtures(), bad_fixtures(), sequences()
    files: dict[str, bytes] = {}
    for fixture in (*good, *bad):
        if fixture.path in files:
            raise ValueError(f"duplicate fixture {fixture.path}")
        files[fixture.path] = fixture.data
    for s in seqs:
        for step in s.steps:
            files[f"sequences/{s.name}/{step.file}"] = step.data
        files[f"sequences/{s.name}/expect.toml"] = expect_toml(s).encode("utf-8")
    for name, source in SAMPLES.items():
        files[f"samples/{name}"] = files[source]
    files["README.md"] = readme(good, bad, seqs).encode("utf-8")
    return files


def write(directory: Path) -> int:
    """Replace the generated part of ``directory`` with the corpus; return the file count."""
    files = corpus()
    directory.mkdir(parents=True, exist_ok=True)
    for sub in GENERATED_DIRS:
        shutil.rmtree(directory / sub, ignore_errors=True)
    for relative, data in sorted(files.items()):
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return len(files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=FIXTURES_DIR, help="directory to write (default: fixtures/)"
    )
    args = parser.parse_args(argv)
    count = write(args.out)
    print(f"wrote {count} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
