"""Hostile bare XML documents (dropped as ``.xml``): entities, DTDs, XInclude, depth, width,
attributes, encodings, truncation and schema breakage; and compression and size cases inside
ebXML messages. Each claim comes from its own seed, so no two cases share a MsgId."""

from __future__ import annotations

import codecs
import random
import re
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

from lxml import etree

from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from tests.support.hostile import Case

T01, T02, T10 = "apprec:T01", "apprec:T02", "apprec:T10"
MIME_PROBLEM = "ebxml:MimeProblem"


def claim(seed: int, bills: int = 2, *, sender_her: str = "8141253") -> bytes:
    """A valid MsgHead with a BehandlerKrav, unique per seed (answered ``accepted``)."""
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=bills,
        sender=default_sender(sender_her),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 8, 30),
    )
    return msghead_with_bkm(head, krav)


def _body(doc: bytes) -> bytes:
    """The document without its XML declaration."""
    return re.sub(rb"^<\?xml[^>]*\?>\s*", b"", doc)


def entity_cases(seed: int) -> Iterator[Case]:
    decl = b"<?xml version='1.0' encoding='UTF-8'?>\n"
    body = _body(claim(seed))
    laughs = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    subsets = {
        "billion-laughs": laughs,
        "quadratic-blowup": b'<!ENTITY a "' + b"x" * 50_000 + b'">',
        "external-file": b'<!ENTITY x SYSTEM "file:///etc/passwd">',
        "external-http": b'<!ENTITY x SYSTEM "http://127.0.0.1:9/x">',
        "parameter-entity": b'<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;',
        "parameter-internal": b"<!ENTITY % p \"<!ENTITY x 'y'>\"> %p;",
        "external-dtd-only": b"",
        "empty-subset": b"",
        "attlist-default": b'<!ATTLIST MsgHead evil CDATA "x">',
        "element-decl": b"<!ELEMENT MsgHead ANY>",
        "notation": b'<!NOTATION n SYSTEM "x">',
        "unparsed-entity": b'<!ENTITY u SYSTEM "x" NDATA n>',
    }
    for index, (name, subset) in enumerate(subsets.items()):
        doctype = (
            b'<!DOCTYPE MsgHead SYSTEM "file:///etc/passwd">'
            if name.endswith("only")
            else b"<!DOCTYPE MsgHead [" + subset + b"]>"
        )
        doc = decl + doctype + _body(claim(seed + index))
        if b"ENTITY x" in subset:
            doc = doc.replace(b"<MIGversion>", b"<MIGversion>&x;", 1)
        if name == "billion-laughs":
            doc = doc.replace(b"<MIGversion>", b"<MIGversion>&lol9;", 1)
        yield Case(f"xml-dtd-{name}", "xml", doc, T01)
    yield Case("xml-dtd-after-comment", "xml", decl + b"<!-- c --><!DOCTYPE x>" + body, T01)
    yield Case("xml-dtd-after-pi", "xml", decl + b"<?pi x?><!DOCTYPE x>" + body, T01)
    undeclared = claim(seed + 40).replace(b"<MIGversion>", b"<MIGversion>&nope;", 1)
    yield Case("xml-undeclared-entity", "xml", undeclared, T01)
    charref = claim(seed + 41).replace(b"<MIGversion>", b"<MIGversion>&#1;", 1)
    yield Case("xml-illegal-char-reference", "xml", charref, T01)
    xinclude = claim(seed + 42).replace(
        b"<MIGversion>",
        b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="/etc/passwd" '
        b'parse="text"/><MIGversion>',
        1,
    )
    yield Case("xml-xinclude-file", "xml", xinclude, T02)
    xinclude_content = claim(seed + 43).replace(
        b"<Enkeltregning>",
        b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="http://127.0.0.1:9/"/>'
        b"<Enkeltregning>",
        1,
    )
    yield Case("xml-xinclude-in-content", "xml", xinclude_content, T02)
    xsl = claim(seed + 44).replace(
        b"<MsgHead", b'<?xml-stylesheet href="file:///etc/passwd"?><MsgHead', 1
    )
    yield Case("xml-stylesheet-pi", "xml", xsl, "accepted")


def shape_cases(seed: int) -> Iterator[Case]:
    for depth in (100, 255, 300, 5_000, 100_000):
        nested = b"<d>" * depth + b"</d>" * depth
        doc = claim(seed + depth).replace(b"<Enkeltregning>", nested + b"<Enkeltregning>", 1)
        yield Case(f"xml-depth-{depth}", "xml", doc, T02 if depth < 250 else T01)
    for width, expect in ((3_000, T02), (6_000, T01), (250_000, T01)):
        one = b"<Enkeltregning><Guid>x</Guid></Enkeltregning>"
        doc = claim(seed + width).replace(b"<Enkeltregning>", one * width + b"<Enkeltregning>", 1)
        yield Case(f"xml-width-{width}", "xml", doc, expect)
    junk = claim(seed + 7).replace(b"<Enkeltregning>", b"<Junk/>" * 4_000 + b"<Enkeltregning>", 1)
    yield Case("xml-width-unknown-siblings", "xml", junk, T02)
    many = b" ".join(b'a%d="v"' % i for i in range(20_000))
    yield Case(
        "xml-attributes-20000",
        "xml",
        claim(seed + 8).replace(b"<MsgInfo>", b"<MsgInfo " + many + b">", 1),
        T02,
    )
    dup = claim(seed + 9).replace(b"<MsgInfo>", b'<MsgInfo a="1" a="2">', 1)
    yield Case("xml-attribute-duplicate", "xml", dup, T01)
    huge = claim(seed + 10).replace(b"<MsgInfo>", b'<MsgInfo a="' + b"x" * 5_000_000 + b'">', 1)
    yield Case("xml-attribute-5mb", "xml", huge, T02)
    text = claim(seed + 11).replace(b"<MIGversion>", b"<MIGversion>" + b"y" * 8_000_000, 1)
    yield Case("xml-text-8mb", "xml", text, T02)
    yield Case(
        "xml-namespace-bomb",
        "xml",
        claim(seed + 12).replace(
            b"<MsgInfo>",
            b"<MsgInfo " + b" ".join(b'xmlns:n%d="urn:%d"' % (i, i) for i in range(5_000)) + b">",
            1,
        ),
        "accepted",
    )
    yield Case(
        "xml-root-unknown-namespace",
        "xml",
        claim(seed + 13).replace(b"http://www.kith.no/xmlstds/msghead/2006-05-24", b"urn:evil", 1),
        T10,
    )
    yield Case("xml-two-roots", "xml", claim(seed + 14) + b"<MsgHead/>", T01)
    yield Case(
        "xml-cdata-everywhere",
        "xml",
        claim(seed + 15).replace(
            b"<MIGversion>v1.2 2006-05-24</MIGversion>",
            b"<MIGversion><![CDATA[v1.2 2006-05-24]]></MIGversion>",
            1,
        ),
        "accepted",
    )


def encoding_cases(seed: int) -> Iterator[Case]:
    def doc(i: int, encoding: str) -> bytes:
        return (
            claim(seed + i)
            .decode()
            .replace("encoding='UTF-8'", f"encoding='{encoding}'")
            .encode(encoding)
        )

    boms = {
        "utf-16-le": codecs.BOM_UTF16_LE,
        "utf-16-be": codecs.BOM_UTF16_BE,
        "utf-32-le": codecs.BOM_UTF32_LE,
        "utf-32-be": codecs.BOM_UTF32_BE,
    }
    for i, (encoding, bom) in enumerate(boms.items()):
        label = encoding[:6].upper()
        for n, mark in enumerate((bom, b"")):
            text = claim(seed + 100 + 2 * i + n).decode()
            text = text.replace("encoding='UTF-8'", f"encoding='{label}'")
            kind = "bom" if mark else "no-bom"
            yield Case(f"xml-{encoding}-{kind}", "xml", mark + text.encode(encoding), "accepted")
    yield Case("xml-utf8-bom", "xml", codecs.BOM_UTF8 + claim(seed + 10), "accepted")
    yield Case("xml-latin1-declared", "xml", doc(11, "ISO-8859-1"), "accepted")
    lying = claim(seed + 12).replace("ø".encode(), b"\xf8")
    yield Case("xml-latin1-bytes-declared-utf8", "xml", lying, T01)
    yield Case(
        "xml-unknown-encoding",
        "xml",
        claim(seed + 13).replace(b"encoding='UTF-8'", b"encoding='x-evil'"),
        T01,
    )
    yield Case(
        "xml-utf7", "xml", claim(seed + 14).replace(b"encoding='UTF-8'", b"encoding='UTF-7'"), T01
    )
    yield Case(
        "xml-ebcdic",
        "xml",
        claim(seed + 15).replace(b"encoding='UTF-8'", b"encoding='EBCDIC-US'"),
        T01,
    )
    yield Case(
        "xml-overlong-utf8", "xml", claim(seed + 16).replace("ø".encode(), b"\xc0\xaf", 1), T01
    )
    yield Case(
        "xml-nul-byte",
        "xml",
        claim(seed + 17).replace(b"<MIGversion>", b"<MIGversion>\x00", 1),
        T01,
    )
    yield Case(
        "xml-lone-surrogate", "xml", claim(seed + 18).replace("ø".encode(), b"\xed\xa0\x80", 1), T01
    )
    yield Case(
        "xml-utf16-declared-utf8-bytes",
        "xml",
        claim(seed + 19).replace(b"encoding='UTF-8'", b"encoding='UTF-16'"),
        T01,
    )
    # Not "<" in its encoding: not a document, so read as MIME (the one rule, README).
    garbage = codecs.BOM_UTF16_LE + b"\xff\xfe\x00garbage"
    yield Case("xml-bom-then-garbage", "xml", garbage, MIME_PROBLEM)


def truncation_cases(seed: int, count: int = 40) -> Iterator[Case]:
    for i in range(count):
        doc = claim(seed + i)
        cut = 40 + (len(doc) - 60) * i // count
        yield Case(f"xml-truncated-{i:02d}", "xml", doc[:cut], T01)


def schema_cases(seed: int) -> Iterator[Case]:
    """An unknown element as first child of each element of a claim: always T02."""
    doc = claim(seed)
    tags = []
    for element in etree.fromstring(doc).iter():
        if isinstance(element.tag, str) and element.tag not in tags:
            tags.append(element.tag)
    for i, tag in enumerate(tags):
        root = etree.fromstring(doc)
        next(root.iter("{*}MsgId")).text = f"hostile-schema-{seed}-{i}"  # a claim of its own
        target = next(root.iter(tag))
        target.insert(0, etree.Element(f"{{{etree.QName(tag).namespace}}}Unexpected"))
        data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        local = etree.QName(tag).localname
        # The first child of Content names the document type: an unknown one is T10.
        yield Case(
            f"xml-schema-unexpected-in-{local}-{i}", "xml", data, T10 if local == "Content" else T02
        )


def compression_cases(seed: int) -> Iterator[Case]:
    def gz(data: bytes) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return packer.compress(data) + packer.flush()

    def bomb(size: int) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        chunk = b" " * (1 << 20)
        out = [packer.compress(b"<a>")] + [packer.compress(chunk) for _ in range(size >> 20)]
        return b"".join([*out, packer.compress(b"</a>"), packer.flush()])

    rng = random.Random(seed)
    payloads = {
        "gzip-bomb-100mb": (bomb(100 << 20), T01),
        "gzip-bomb-11mb": (bomb(11 << 20), T01),
        "gzip-corrupt": (gz(claim(seed))[:30] + b"\x00" * 50, T01),
        "gzip-truncated": (gz(claim(seed + 1))[:-20], T01),
        "gzip-in-gzip": (gz(gz(claim(seed + 2))), T01),
        "gzip-empty": (gz(b""), T01),
        # Only the first gzip member is read (what follows is ignored, as gzip readers do).
        "gzip-trailing-garbage": (gz(claim(seed + 3)) + b"garbage", "accepted"),
        "gzip-valid": (gz(claim(seed + 4)), "accepted"),
    }
    for name, (payload, expect) in payloads.items():
        raw = ebxml_message(payload, rng=rng, timestamp=datetime(2026, 11, 23, 11, 0, tzinfo=UTC))
        yield Case(f"compression-{name}", "compression", raw, expect)


def size_cases(seed: int) -> Iterator[Case]:
    big = claim(seed) + b" " * (11 << 20)
    yield Case("size-xml-11mb", "size", big, T01, oversized=True)
    mime_big = ebxml_message(claim(seed + 1), rng=random.Random(seed))
    yield Case(
        "size-mime-11mb", "size", mime_big + b"\r\n" * (6 << 20), MIME_PROBLEM, oversized=True
    )
    yield Case("size-empty", "size", b"", MIME_PROBLEM)
    yield Case("size-whitespace", "size", b" \r\n\t" * 100, MIME_PROBLEM)
    yield Case("size-one-byte", "size", b"<", T01)
    comments = b"".join(b"<!--" + b"c" * (1 << 20) + b"-->" for _ in range(9))
    near = claim(seed + 2).replace(b"<MIGversion>", comments + b"<MIGversion>", 1)
    yield Case("size-just-under-limit", "size", near, "accepted")


def attribute_cases(seed: int) -> Iterator[Case]:
    """An attribute no schema declares, on each element of a claim: always T02."""
    doc = claim(seed)
    tags: list[str] = []
    for element in etree.fromstring(doc).iter():
        if isinstance(element.tag, str) and element.tag not in tags:
            tags.append(element.tag)
    for i, tag in enumerate(tags):
        root = etree.fromstring(doc)
        next(root.iter("{*}MsgId")).text = f"hostile-attribute-{seed}-{i}"
        next(root.iter(tag)).set("evil", "1")
        data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        yield Case(f"xml-attribute-unknown-on-{etree.QName(tag).localname}-{i}", "xml", data, T02)
