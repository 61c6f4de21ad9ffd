"""Differential test: the project's own XSDs against the official ones.

Two catalogs see the same documents: one with only ``schemas/``, one where the official XSDs
from ``../shared/standards`` take precedence (BehandlerKrav has no official XSD, so both use the
project's). For the real samples and for many mutants of each valid one, both must agree on
valid/invalid.
"""

from __future__ import annotations

import copy
import email
import email.policy
import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.errors import NotXml
from gateway.validation import SchemaCatalog, parse_xml

pytestmark = pytest.mark.conformance

BKM_SAMPLE = "bkm-2006-12-20/samples/2023_08_29T12_56_58_328.p7m.deenveloped.ungz"

#: Sample documents (relative to the standards folder) and whether the official XSDs accept them.
EXPECTED: dict[str, bool] = {
    BKM_SAMPLE: True,
    "apprec-v1.0/samples/example-ok.xml": True,
    "apprec-v1.0/samples/example-avvist.xml": True,
    "apprec-v1.0/samples/example-ok-feil-i-delmelding.xml": True,
    "apprec-v1.0/samples/all-data.xml": True,
    # A negative test at application level (Status V="73" is no 8258 code); schema-valid.
    "apprec-v1.0/samples/unknown-status.xml": True,
    # helsenorge's metadata test: a plain AppRec 1.0 (an "OK" receipt to a dialog message).
    "apprec-v1.0/samples/MetadataTests_Apprec10.xml": True,
    "ebxml-ebms2/samples/2023_08_29T12_56_58_328.xml": True,
    "ebxml-ebms2/samples/messageerror.xml": True,
    # Placeholder digests/signatures, SOAP:mustUnderstand="true": invalid officially.
    "ebxml-ebms2/samples/acknowledgment.xml": False,
    "ebxml-ebms2/samples/payloadmessage.xml": False,
}

#: Test fixtures written by the project (may not exist yet); searched like the samples.
FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"

_SNIFF_BYTES = 512
_MAX_UNZIPPED = 10 * 1024 * 1024


def _looks_like_xml(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"<?xml") or (text[:1] == b"<" and text[1:2].isalpha())


def _xml_parts_of_mime(data: bytes) -> Iterator[bytes]:
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    for part in message.walk():
        if part.get_content_type() in ("text/xml", "application/xml"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and _looks_like_xml(payload[:_SNIFF_BYTES]):
                yield payload


def documents_in(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every XML document found at ``path`` (a file or a folder, searched recursively).

    Yields ``(name, bytes)`` for ``*.xml`` files, other files whose content is XML, the XML
    inside gzip files, and the ``text/xml`` parts of MIME messages. Schemas are skipped.
    """
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file.suffix == ".xsd":
            continue
        data = file.read_bytes()
        name = str(file)
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)[:_MAX_UNZIPPED]
            except (OSError, EOFError):
                continue
            name += " (gunzipped)"
        if file.suffix == ".xml" or _looks_like_xml(data[:_SNIFF_BYTES]):
            yield name, data
        elif b"MIME-Version:" in data[:4096] or file.suffix in (".msg", ".eml"):
            for index, part in enumerate(_xml_parts_of_mime(data)):
                yield f"{name} (part {index})", part


# --- catalogs and documents ------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> SchemaCatalog:
    catalog = SchemaCatalog.default()
    catalog.compile()
    return catalog


@pytest.fixture(scope="module")
def official(standards: Path) -> SchemaCatalog:
    catalog = SchemaCatalog.default(extra_dirs=[standards])
    catalog.compile()
    return catalog


def _comparable(
    project: SchemaCatalog, documents: Iterator[tuple[str, bytes]]
) -> list[tuple[str, etree._Element]]:
    """Parsed documents whose root namespace the project's catalog knows."""
    found: list[tuple[str, etree._Element]] = []
    for name, data in documents:
        try:
            root = parse_xml(data)
        except NotXml:
            continue
        if etree.QName(root).namespace in project.namespaces:
            found.append((name, root))
    return found


@pytest.fixture(scope="module")
def corpus(standards: Path, project: SchemaCatalog) -> list[tuple[str, etree._Element]]:
    """Every comparable document in the standards' sample folders and in ``fixtures/``."""
    folders = [
        standards / "bkm-2006-12-20" / "samples",
        standards / "apprec-v1.0" / "samples",
        standards / "ebxml-ebms2" / "samples",
    ]
    if FIXTURES_DIR.is_dir():
        folders.append(FIXTURES_DIR)
    documents: list[tuple[str, etree._Element]] = []
    for folder in folders:
        documents.extend(_comparable(project, documents_in(folder)))
    return documents


@pytest.fixture(scope="module")
def valid_roots(
    corpus: list[tuple[str, etree._Element]], project: SchemaCatalog, official: SchemaCatalog
) -> list[tuple[str, etree._Element]]:
    roots = [(n, r) for n, r in corpus if official.validate(r).valid and project.validate(r).valid]
    assert len(roots) >= 9
    return roots


# --- the samples -----------------------------------------------------------------------------


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_official_sample(
    relative: str, standards: Path, project: SchemaCatalog, official: SchemaCatalog
) -> None:
    data = (standards / relative).read_bytes()
    mine, theirs = project.validate_bytes(data), official.validate_bytes(data)
    assert theirs.valid is EXPECTED[relative], theirs.summary()
    assert mine.valid is theirs.valid, f"project:\n{mine.summary()}\nofficial:\n{theirs.summary()}"


def test_official_catalog_uses_official_files(standards: Path, official: SchemaCatalog) -> None:
    msghead = "http://www.kith.no/xmlstds/msghead/2006-05-24"
    bkm = "http://www.kith.no/xmlstds/bkm/2006-12-20"
    assert official.source_of(msghead).is_relative_to(standards.resolve())
    assert official.source_of(bkm).name == "bkm-2006-12-20.xsd"


def test_every_found_document_agrees(
    corpus: list[tuple[str, etree._Element]], project: SchemaCatalog, official: SchemaCatalog
) -> None:
    assert len(corpus) >= len(EXPECTED)
    for name, root in corpus:
        mine, theirs = project.validate(root), official.validate(root)
        assert mine.valid is theirs.valid, f"{name}\n{mine.summary()}\n{theirs.summary()}"


# --- mutants ---------------------------------------------------------------------------------

GARBAGE_TEXT = ["", " ", "x", "-1", "0", "1", "1.5", "1.234", "true", "2023-13-45", "abc!", "ø=="]
GARBAGE_ATTR = ["", "true", "1", "0", "x y", "-5", "1.234", "2.16.578", "NOK", "Z", "ÆØÅ"]

Mutation = Callable[[etree._Element, int, str], bool]


def _elements(root: etree._Element) -> list[etree._Element]:
    return [el for el in root.iter() if isinstance(el.tag, str)]


def _delete(el: etree._Element, _pick: int, _value: str) -> bool:
    parent = el.getparent()
    if parent is None:
        return False
    parent.remove(el)
    return True


def _duplicate(el: etree._Element, _pick: int, _value: str) -> bool:
    if el.getparent() is None:
        return False
    el.addnext(copy.deepcopy(el))
    return True


def _rename(el: etree._Element, pick: int, _value: str) -> bool:
    # Half the time to another name already in the document (more interesting than garbage).
    names = sorted({str(e.tag) for e in _elements(el.getroottree().getroot())} - {str(el.tag)})
    if pick % 2 or not names:
        qname = etree.QName(el)
        el.tag = etree.QName(qname.namespace, qname.localname + "X").text
    else:
        el.tag = names[pick // 2 % len(names)]
    return True


def _set_text(el: etree._Element, _pick: int, value: str) -> bool:
    el.text = value
    return True


def _set_attribute(el: etree._Element, pick: int, value: str) -> bool:
    names = sorted(str(name) for name in el.attrib)
    if not names:
        return False
    el.set(names[pick % len(names)], value)
    return True


def _drop_attribute(el: etree._Element, pick: int, _value: str) -> bool:
    names = sorted(str(name) for name in el.attrib)
    if not names:
        return False
    del el.attrib[names[pick % len(names)]]
    return True


def _swap_with_next(el: etree._Element, _pick: int, _value: str) -> bool:
    following = el.getnext()
    while following is not None and not isinstance(following.tag, str):
        following = following.getnext()
    if following is None:
        return False
    following.addnext(el)  # moves el after its next element sibling
    return True


MUTATIONS: dict[str, Mutation] = {
    "delete": _delete,
    "duplicate": _duplicate,
    "rename": _rename,
    "text": _set_text,
    "attribute": _set_attribute,
    "drop-attribute": _drop_attribute,
    "swap": _swap_with_next,
}


#: Values tried in place of every text and every attribute value in the systematic test.
SYSTEMATIC_VALUES = ("", "x", "-1", "1.234", "true")

#: (pick, value) pairs tried for the structural mutations of every element.
SYSTEMATIC: dict[str, tuple[tuple[int, str], ...]] = {
    "delete": ((0, ""),),
    "duplicate": ((0, ""),),
    "rename": ((0, ""), (1, "")),
    "swap": ((0, ""),),
}


def _mutant(root: etree._Element, kind: str, index: int, pick: int, value: str) -> etree._Element:
    clone = copy.deepcopy(root)
    elements = _elements(clone)
    target = elements[index % len(elements)]
    MUTATIONS[kind](target, pick, value)
    return clone


def _assert_agree(
    project: SchemaCatalog, official: SchemaCatalog, mutant: etree._Element, label: str
) -> None:
    mine, theirs = project.validate(mutant), official.validate(mutant)
    assert mine.valid is theirs.valid, (
        f"{label}\nproject:\n{mine.summary()}\nofficial:\n{theirs.summary()}\n"
        + etree.tostring(mutant, encoding="unicode")[:3000]
    )


@pytest.mark.slow
def test_systematic_mutants_agree(
    valid_roots: list[tuple[str, etree._Element]],
    project: SchemaCatalog,
    official: SchemaCatalog,
) -> None:
    """Every structural mutation of every element, every text and every attribute value."""
    checked = 0
    for name, root in valid_roots:
        for index in range(len(_elements(root))):
            for kind, variants in SYSTEMATIC.items():
                for pick, value in variants:
                    mutant = _mutant(root, kind, index, pick, value)
                    _assert_agree(project, official, mutant, f"{name} {kind} #{index}")
                    checked += 1
        # Values and attributes are changed in place and restored: no copy per mutant.
        mutant = copy.deepcopy(root)
        for index, element in enumerate(_elements(mutant)):
            label = f"{name} #{index}"
            original_text = element.text
            for value in SYSTEMATIC_VALUES:
                element.text = value
                _assert_agree(project, official, mutant, f"{label} text={value!r}")
            element.text = original_text
            for attribute, original in sorted((str(k), str(v)) for k, v in element.attrib.items()):
                for value in SYSTEMATIC_VALUES:
                    element.set(attribute, value)
                    _assert_agree(project, official, mutant, f"{label} @{attribute}={value!r}")
                del element.attrib[attribute]
                _assert_agree(project, official, mutant, f"{label} without @{attribute}")
                element.set(attribute, original)
            checked += len(SYSTEMATIC_VALUES) * (1 + len(element.attrib)) + len(element.attrib)
    assert checked > 1000


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_mutants_agree(
    data: st.DataObject,
    valid_roots: list[tuple[str, etree._Element]],
    project: SchemaCatalog,
    official: SchemaCatalog,
) -> None:
    name, root = data.draw(st.sampled_from(valid_roots), label="document")
    mutant = copy.deepcopy(root)
    steps = data.draw(st.integers(min_value=1, max_value=3), label="steps")
    for _ in range(steps):
        elements = _elements(mutant)
        kind = data.draw(st.sampled_from(sorted(MUTATIONS)), label="kind")
        index = data.draw(st.integers(0, len(elements) - 1), label="element")
        pick = data.draw(st.integers(0, 1000), label="pick")
        pool = GARBAGE_ATTR if kind == "attribute" else GARBAGE_TEXT
        value = data.draw(st.sampled_from(pool) | st.text(max_size=12), label="value")
        value = "".join(ch for ch in value if _xml_char(ch))
        MUTATIONS[kind](elements[index], pick, value)
    _assert_agree(project, official, mutant, name)


def _xml_char(ch: str) -> bool:
    code = ord(ch)
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )
