"""Read a KITH MsgHead v1.2 envelope into ``MsgHead`` values and hand out its payload element.

The document is expected to have passed XSD validation already, but nothing here trusts that:
anything missing or malformed raises ``SchemaInvalid`` with an XPath-like ``location``, and a
document that is not an inline-XML MsgHead raises ``UnsupportedMessageType``. Error texts never
quote values from the message, so a national identity number can never leak into them.

The small XSD lexical helpers at the bottom are shared with ``gateway.claims.bkm``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.claims.model import Code, HealthcareProfessional, Ident, MsgHead, Organisation
from gateway.errors import SchemaInvalid, UnsupportedMessageType

__all__ = ["MSGHEAD_NS", "XMLDSIG_NS", "MsgHeadDocument", "parse_msghead"]

MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


@dataclass(frozen=True, slots=True, eq=False)
class MsgHeadDocument:
    """A parsed MsgHead: the envelope values, the payload element and the signature, if any."""

    head: MsgHead
    content: etree._Element  # first element child of the first Document/RefDoc/Content
    signature: etree._Element | None  # the enveloped ds:Signature child of MsgHead


def parse_msghead(root: etree._Element) -> MsgHeadDocument:
    """Read a MsgHead v1.2 root element; raise ``SchemaInvalid``/``UnsupportedMessageType``."""
    if split_tag(root) != (MSGHEAD_NS, "MsgHead"):
        raise UnsupportedMessageType(
            f"Meldingen er ikke en MsgHead v1.2 (rotelement MsgHead i navnerommet {MSGHEAD_NS}).",
            location=element_path(root),
        )
    msg = Node(root, "/MsgHead", MSGHEAD_NS)
    info = msg.child("MsgInfo")
    content, description = _content(msg)
    head = MsgHead(
        msg_type=_cs(info.child("Type")),
        mig_version=info.child("MIGversion").text(),
        gen_date=info.child("GenDate").as_datetime(),
        msg_id=info.child("MsgId").text(),
        sender=_organisation(info.child("Sender").child("Organisation")),
        receiver=_organisation(info.child("Receiver").child("Organisation")),
        content_description=description,
    )
    signature = next(
        (el for el in root if split_tag(el) == (XMLDSIG_NS, "Signature")),
        None,
    )
    return MsgHeadDocument(head=head, content=content, signature=signature)


def _content(msg: Node) -> tuple[etree._Element, str | None]:
    """The payload element and RefDoc/Description of the first Document with inline Content."""
    documents = msg.children("Document")
    if not documents:
        if msg.children("PatientReport"):
            raise UnsupportedMessageType(
                "Meldinger med PatientReport støttes ikke; forventet Document/RefDoc/Content.",
                location=f"{msg.path}/PatientReport",
            )
        msg.child("Document")  # raises SchemaInvalid for the missing element
    for document in documents:
        ref_doc = document.child("RefDoc")
        content = ref_doc.opt("Content")
        if content is None:
            continue
        payload = next((el for el in content.el if isinstance(el.tag, str)), None)
        if payload is None:
            raise UnsupportedMessageType(
                "RefDoc/Content inneholder ikke noe XML-dokument.", location=content.path
            )
        description = ref_doc.opt("Description")
        return payload, None if description is None else description.text()
    raise UnsupportedMessageType(
        "Meldingen har ikke dokumentet innebygd i RefDoc/Content "
        "(vedlegg via FileReference støttes ikke).",
        location=f"{msg.path}/Document/RefDoc",
    )


def _cs(node: Node) -> Code:
    """A KITH CS value (``V`` and ``DN``; CS has no code system)."""
    return Code(node.token_attr("V"), None, node.opt_attr("DN"))


def _ident(node: Node) -> Ident:
    return Ident(node.child("Id").text(), node.child("TypeId").token_attr("V"))


def _idents(node: Node) -> tuple[Ident, ...]:
    idents = tuple(_ident(n) for n in node.children("Ident"))
    if not idents:
        node.child("Ident")  # raises SchemaInvalid for the missing element
    return idents


def _organisation(node: Node) -> Organisation:
    # Nested sub-organisations (Organisation/Organisation) are not modelled; the claim
    # addressing uses the top level only.
    professional = node.opt("HealthcareProfessional")
    return Organisation(
        name=node.child("OrganisationName").text(),
        idents=_idents(node),
        professional=None if professional is None else _professional(professional),
    )


def _professional(node: Node) -> HealthcareProfessional:
    type_ = node.opt("TypeHealthcareProfessional")
    family_name = node.opt("FamilyName")
    given_name = node.opt("GivenName")
    return HealthcareProfessional(
        type=None if type_ is None else _cs(type_),
        family_name=None if family_name is None else family_name.text(),
        given_name=None if given_name is None else given_name.text(),
        idents=_idents(node),
    )


# --- Shared helpers (also used by gateway.claims.bkm) --------------------------------------------


def split_tag(el: etree._Element) -> tuple[str | None, str | None]:
    """``(namespace, local name)`` of an element; ``(None, None)`` for comments, PIs, entities."""
    tag = el.tag
    if not isinstance(tag, str):
        return None, None
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def element_path(el: etree._Element) -> str:
    """XPath-like location of ``el`` from its root, by local names (``/A/B[2]/C``)."""
    steps: list[str] = []
    current: etree._Element | None = el
    while current is not None:
        _, local = split_tag(current)
        parent = current.getparent()
        step = local or "node()"
        if parent is not None:
            same = [sib for sib in parent if sib.tag == current.tag]
            if len(same) > 1:
                step += f"[{same.index(current) + 1}]"
        steps.append(step)
        current = parent
    return "/" + "/".join(reversed(steps))


class Node:
    """An element with its location, whose lookups raise ``SchemaInvalid`` when things are missing.

    Only children in the node's namespace count; others are ignored (XSD validation has
    already rejected them where they matter).
    """

    __slots__ = ("_children", "el", "ns", "path")

    def __init__(self, el: etree._Element, path: str, ns: str) -> None:
        self.el = el
        self.path = path
        self.ns = ns
        self._children: dict[str, list[etree._Element]] | None = None

    def _by_name(self) -> dict[str, list[etree._Element]]:
        grouped = self._children
        if grouped is None:
            # One pass over the children, comparing Clark-notation prefixes: this runs for
            # every element of every claim, so it avoids a call per child.
            grouped = {}
            prefix = "{" + self.ns + "}"
            cut = len(prefix)
            for child in self.el:
                tag = child.tag
                if isinstance(tag, str) and tag.startswith(prefix):
                    local = tag[cut:]
                    same = grouped.get(local)
                    if same is None:
                        grouped[local] = [child]
                    else:
                        same.append(child)
            self._children = grouped
        return grouped

    def children(self, name: str) -> list[Node]:
        """All children called ``name``, located with a position index."""
        found = self._by_name().get(name)
        if not found:
            return []
        path, ns = self.path, self.ns
        return [Node(el, f"{path}/{name}[{i}]", ns) for i, el in enumerate(found, 1)]

    def opt(self, name: str) -> Node | None:
        """The first child called ``name``, or ``None``."""
        found = self._by_name().get(name)
        if not found:
            return None
        if len(found) > 1:
            return Node(found[0], f"{self.path}/{name}[1]", self.ns)
        return Node(found[0], f"{self.path}/{name}", self.ns)

    def child(self, name: str) -> Node:
        """The first child called ``name``; ``SchemaInvalid`` if there is none."""
        found = self._by_name().get(name)
        if not found:
            raise SchemaInvalid(f"Elementet {name} mangler.", location=f"{self.path}/{name}")
        if len(found) > 1:
            return Node(found[0], f"{self.path}/{name}[1]", self.ns)
        return Node(found[0], f"{self.path}/{name}", self.ns)

    def raw_text(self) -> str:
        """The character content as sent; ``SchemaInvalid`` if the element has child elements."""
        parts = [self.el.text or ""]
        for child in self.el:
            if isinstance(child.tag, str):
                raise SchemaInvalid(
                    "Elementet skal inneholde en verdi, ikke underelementer.", location=self.path
                )
            # Comments and processing instructions split the text; their tails are content.
            parts.append(child.tail or "")
        return "".join(parts)

    def text(self) -> str:
        """The character content without surrounding XML whitespace."""
        return self.raw_text().strip(XML_WHITESPACE)

    def token(self) -> str:
        """The content as an XSD token (whitespace collapsed)."""
        return collapse(self.raw_text())

    def opt_attr(self, name: str) -> str | None:
        value = self.el.get(name)
        return None if value is None else str(value)

    def attr(self, name: str) -> str:
        value = self.el.get(name)
        if value is None:
            raise SchemaInvalid(f"Attributtet {name} mangler.", location=f"{self.path}/@{name}")
        return str(value)

    def token_attr(self, name: str) -> str:
        return collapse(self.attr(name))

    def opt_token_attr(self, name: str) -> str | None:
        value = self.opt_attr(name)
        return None if value is None else collapse(value)

    def as_datetime(self) -> datetime:
        return parse_xsd_datetime(self.raw_text(), self.path)

    def as_date(self) -> date:
        return parse_xsd_date(self.raw_text(), self.path)

    def as_bool(self) -> bool:
        return parse_xsd_boolean(self.raw_text(), self.path)

    def as_positive_int(self) -> int:
        return parse_xsd_positive_int(self.raw_text(), self.path)

    def bool_attr(self, name: str) -> bool:
        return parse_xsd_boolean(self.attr(name), f"{self.path}/@{name}")

    def amount_attr(self, name: str) -> Decimal:
        return parse_amount(self.attr(name), f"{self.path}/@{name}")


XML_WHITESPACE = " \t\n\r"
_WS_RUN = re.compile(r"[ \t\n\r]+")


def collapse(value: str) -> str:
    """XSD whiteSpace="collapse": runs of XML whitespace become one space, ends trimmed."""
    return _WS_RUN.sub(" ", value).strip(" ")


# re.ASCII throughout: \d must not match non-ASCII digits, which int() would happily accept.
_TZ = r"(?P<tz>Z|[+-]\d{2}:\d{2})?"
_DATE = r"(?P<year>-?\d{4,})-(?P<month>\d{2})-(?P<day>\d{2})"
_DATETIME_RE = re.compile(
    _DATE + r"T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<frac>\d+))?" + _TZ,
    re.ASCII,
)
_DATE_RE = re.compile(_DATE + _TZ, re.ASCII)
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_POSITIVE_INT_RE = re.compile(r"\+?\d{1,18}", re.ASCII)

#: Amounts as the project's BKM schema types them (``bkm:Amount``): non-negative, at most
#: 12 digits of which 2 after the point. Also keeps Decimal arithmetic far from the default
#: 28-digit precision, where sums would round silently.
AMOUNT_FRACTION_DIGITS = 2
AMOUNT_TOTAL_DIGITS = 12


@functools.cache
def _oslo() -> ZoneInfo:
    return ZoneInfo("Europe/Oslo")


def _year(text: str, location: str, detail: str) -> int:
    digits = text.lstrip("-")
    if text.startswith("-") or (len(digits) > 4 and digits.startswith("0")):
        raise SchemaInvalid(detail, location=location)
    year = int(digits) if len(digits) <= 6 else 0
    if not 1 <= year <= 9999:
        raise SchemaInvalid("Året er utenfor gyldig område (0001–9999).", location=location)
    return year


def _offset(tz: str | None, location: str, detail: str) -> timezone | None:
    if tz is None:
        return None
    if tz == "Z":
        return UTC
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if minutes > 59 or hours > 14 or (hours == 14 and minutes):
        raise SchemaInvalid(detail, location=location)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if tz[0] == "-" else delta)


def parse_xsd_datetime(text: str, location: str) -> datetime:
    """An xs:dateTime as naive Norwegian local time (zoned values converted to Europe/Oslo)."""
    detail = "Ugyldig tidspunkt; forventet xs:dateTime (ÅÅÅÅ-MM-DDTtt:mm:ss)."
    match = _DATETIME_RE.fullmatch(collapse(text))
    if match is None:
        raise SchemaInvalid(detail, location=location)
    year = _year(match["year"], location, detail)
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
    # Sub-microsecond digits are truncated: rounding up could roll over into the next second.
    micro = int((match["frac"] or "")[:6].ljust(6, "0"))
    tz = _offset(match["tz"], location, detail)
    try:
        if hour == 24:  # XSD 1.0 allows 24:00:00 for the end of a day
            if minute or second or micro:
                raise ValueError("24:00:00 only")
            value = datetime(year, int(match["month"]), int(match["day"])) + timedelta(days=1)
        else:
            value = datetime(
                year, int(match["month"]), int(match["day"]), hour, minute, second, micro
            )
        if tz is not None:
            value = value.replace(tzinfo=tz).astimezone(_oslo()).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise SchemaInvalid(detail, location=location) from None
    return value


def parse_xsd_date(text: str, location: str) -> date:
    """An xs:date; a time zone, if given, is checked and dropped (a date has no instant)."""
    detail = "Ugyldig dato; forventet xs:date (ÅÅÅÅ-MM-DD)."
    match = _DATE_RE.fullmatch(collapse(text))
    if match is None:
        raise SchemaInvalid(detail, location=location)
    year = _year(match["year"], location, detail)
    _offset(match["tz"], location, detail)
    try:
        return date(year, int(match["month"]), int(match["day"]))
    except ValueError:
        raise SchemaInvalid(detail, location=location) from None


def parse_xsd_boolean(text: str, location: str) -> bool:
    """An xs:boolean: ``true``/``false``/``1``/``0``."""
    value = collapse(text)
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise SchemaInvalid(
        "Ugyldig sannhetsverdi; forventet true, false, 1 eller 0.", location=location
    )


def parse_xsd_positive_int(text: str, location: str) -> int:
    """An xs:positiveInteger (at most 18 digits)."""
    value = collapse(text)
    if _POSITIVE_INT_RE.fullmatch(value) is None or int(value) < 1:
        raise SchemaInvalid("Ugyldig antall; forventet et positivt heltall.", location=location)
    return int(value)


def parse_amount(text: str, location: str) -> Decimal:
    """An amount in kroner (xs:decimal), kept as sent: ``"375.00"`` keeps its two places.

    Refuses NaN, infinities, exponents, underscores, decimal commas, negative values, more than
    two decimals and more than 12 digits. The digit limits are checked on the lexical form, so
    no Decimal context rounding can hide extra digits.
    """
    value = collapse(text)
    if _DECIMAL_RE.fullmatch(value) is None:
        raise SchemaInvalid(
            "Ugyldig beløp; forventet desimaltall med punktum som desimalskilletegn.",
            location=location,
        )
    integer, _, fraction = value.lstrip("+-").partition(".")
    fraction = fraction.rstrip("0")
    if len(fraction) > AMOUNT_FRACTION_DIGITS:
        raise SchemaInvalid(
            f"Beløpet kan ha høyst {AMOUNT_FRACTION_DIGITS} desimaler.", location=location
        )
    if len(integer.lstrip("0")) + len(fraction) > AMOUNT_TOTAL_DIGITS:
        raise SchemaInvalid(
            f"Beløpet kan ha høyst {AMOUNT_TOTAL_DIGITS} siffer.", location=location
        )
    amount = Decimal(value)
    if amount < 0:
        raise SchemaInvalid("Beløpet kan ikke være negativt.", location=location)
    return amount
