"""The building blocks of every fixture: senders, seeded claims, the ebXML wrapping, XML and
MIME editing, and the records the corpus is made of (``Fixture``, ``Step``, ``SequenceSpec``).

Every fixture draws its randomness from a generator seeded by its own name (``rng_for``), so a
fixture's bytes do not depend on which other fixtures exist or on their order.
"""

from __future__ import annotations

import base64
import dataclasses
import random
import re
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from lxml import etree

from gateway.claims.model import (
    BehandlerKrav,
    Code,
    Enkeltregning,
    HealthcareProfessional,
    Ident,
    MsgHead,
    Organisation,
)
from gateway.ebxml.namespaces import BKM_NS, EB_NS, MSGHEAD_NS, SOAP_NS
from gateway.testing.claims import (
    Practitioner,
    default_receiver,
    default_sender,
    make_claim,
    msghead_with_bkm,
)
from gateway.testing.messages import Route, ebxml_message

#: The ebXML Timestamp of every generated message (the tests run with 2026-11-23 12:00 UTC).
EBXML_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
#: A treatment time after the moment the claims are received (rule 766): years ahead, so that
#: the README sample shows 766 on a real clock too, not only on the tests' fixed one.
FUTURE = datetime(2030, 1, 7, 9, 0)
OUR_HER = "79768"
OTHER_HER = "80624"

#: Clark-notation prefixes ("{namespace}") for ElementPath expressions.
MH = f"{{{MSGHEAD_NS}}}"
BKM = f"{{{BKM_NS}}}"
EB = f"{{{EB_NS}}}"
SOAP = f"{{{SOAP_NS}}}"

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
    return f"{MH}Document/{MH}RefDoc/{MH}Content/{BKM}BehandlerKrav/{BKM}Enkeltregning/{local}"


KRAV_PATH = f"{MH}Document/{MH}RefDoc/{MH}Content/{BKM}BehandlerKrav"


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


def accepted(file: str, data: bytes) -> Step:
    """A step the pipeline accepts (AppRec status 1), with an acknowledgment."""
    return Step(file, data, "accepted", 1, acknowledgment=True)


def bill_rejected(file: str, data: bytes, status: int, code: str, *ot: str) -> Step:
    """A step answered with ``code``: status 3 (some bills rejected) or 2 (the message), naming
    the rejected bills' RegningNr in ``ot``; with an acknowledgment."""
    outcome = "partially_accepted" if status == 3 else "rejected"
    return Step(file, data, outcome, status, codes=(code,), ot=ot, acknowledgment=True)


@dataclass(frozen=True, slots=True)
class SequenceSpec:
    name: str
    description: str
    steps: tuple[Step, ...]
