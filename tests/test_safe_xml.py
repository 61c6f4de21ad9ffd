"""Hostile and broken input to ``parse_xml``: every case is ``NotXml``, quickly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from lxml import etree

from gateway.errors import NotXml, receipt_for
from gateway.validation import safe_xml
from gateway.validation.safe_xml import parse_xml, redact_identity_numbers

#: Generous bound for "does not hang"; each case takes microseconds to milliseconds.
QUICK_SECONDS = 2.0

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>
"""

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>
"""

XXE_HTTP = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/secret">]>
<foo>&xxe;</foo>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE foo SYSTEM "http://127.0.0.1:9/evil.dtd">
<foo/>
"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY % remote SYSTEM "file:///etc/passwd"> %remote;]>
<foo/>
"""

DTD_AFTER_COMMENT_AND_PI = b"""<?xml version="1.0"?>
<!-- a comment first -->
<?some-pi data?>
<!DOCTYPE foo [<!ENTITY e "x">]>
<foo>&e;</foo>
"""

HOSTILE_WITH_DTD = {
    "billion-laughs": BILLION_LAUGHS,
    "xxe-file": XXE_FILE,
    "xxe-http": XXE_HTTP,
    "external-dtd": EXTERNAL_DTD,
    "parameter-entity": PARAMETER_ENTITY,
    "dtd-after-comment-and-pi": DTD_AFTER_COMMENT_AND_PI,
    "doctype-only": b"<!DOCTYPE foo><foo/>",
    "entity-only-prolog": b"<!ENTITY e 'x'><foo/>",
    "utf16-doctype": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16"),
    "utf16le-no-bom-doctype": "<!DOCTYPE a><a/>".encode("utf-16-le"),
}


def _parse_quickly(data: bytes, **kwargs: int) -> NotXml:
    started = time.perf_counter()
    with pytest.raises(NotXml) as caught:
        parse_xml(data, **kwargs)
    assert time.perf_counter() - started < QUICK_SECONDS
    error = caught.value
    assert error.detail
    assert receipt_for(error).code == "T01"
    return error


@pytest.mark.parametrize("name", sorted(HOSTILE_WITH_DTD))
def test_dtd_and_entities_are_refused(name: str) -> None:
    error = _parse_quickly(HOSTILE_WITH_DTD[name])
    assert "DTD" in error.detail
    assert "root:" not in error.detail


@pytest.fixture
def without_prolog_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Disable the textual pre-check, to exercise the checks on the parsed tree."""
    monkeypatch.setattr(safe_xml, "_prolog_declares_dtd", lambda _data: False)
    yield


@pytest.mark.parametrize("name", sorted(HOSTILE_WITH_DTD))
@pytest.mark.usefixtures("without_prolog_check")
def test_parsed_tree_check_also_refuses_dtds(name: str) -> None:
    error = _parse_quickly(HOSTILE_WITH_DTD[name])
    assert "root:" not in error.detail


def test_undeclared_entity_is_malformed() -> None:
    error = _parse_quickly(b"<foo>&xxe;</foo>")
    assert "xxe" in error.detail


def test_empty_input() -> None:
    assert "tomt" in _parse_quickly(b"").detail
    assert "tomt" in _parse_quickly(b"  \r\n\t ").detail


def test_oversized_input() -> None:
    error = _parse_quickly(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)
    assert "for stort" in error.detail
    limit = safe_xml.DEFAULT_MAX_XML_BYTES
    _parse_quickly(b"<a>" + b"x" * limit + b"</a>")


def test_truncated_names_line_and_column() -> None:
    error = _parse_quickly(b"<?xml version='1.0'?>\n<a>\n  <b>text</b>\n")
    assert "linje" in error.detail and "kolonne" in error.detail
    assert "column" not in error.detail  # lxml's own position suffix is dropped


def test_mismatched_tag() -> None:
    error = _parse_quickly(b"<a>\n<b></c>\n</a>")
    assert "linje 2" in error.detail


def test_latin1_bytes_declared_utf8() -> None:
    data = '<?xml version="1.0" encoding="UTF-8"?><a>Tønsberg</a>'.encode("latin-1")
    _parse_quickly(data)


def test_unknown_declared_encoding() -> None:
    _parse_quickly(b'<?xml version="1.0" encoding="x-no-such-charset"?><a/>')


def test_utf16_declared_but_single_byte() -> None:
    _parse_quickly(b'<?xml version="1.0" encoding="UTF-16"?><a>x</a>')


def test_invalid_character_reference() -> None:
    _parse_quickly(b"<a>&#0;</a>")


def test_deep_nesting() -> None:
    depth = 100_000
    error = _parse_quickly(b"<a>" * depth + b"</a>" * depth)
    assert "depth" in error.detail.lower()


def test_huge_attribute() -> None:
    huge = b'<a x="' + b"y" * (8 * 1024 * 1024) + b'"/>'
    started = time.perf_counter()
    assert parse_xml(huge).get("x") == "y" * (8 * 1024 * 1024)
    assert time.perf_counter() - started < QUICK_SECONDS
    _parse_quickly(huge, max_bytes=1024 * 1024)


def test_many_attributes_and_wide_tree() -> None:
    attributes = b" ".join(b'a%d="v"' % i for i in range(20_000))
    started = time.perf_counter()
    parse_xml(b"<a " + attributes + b">" + b"<b/>" * 4_000 + b"</a>")
    # Wider than the width budget: refused, as quickly (its schema errors could not be).
    error = _parse_quickly(b"<a " + attributes + b">" + b"<b/>" * 100_000 + b"</a>")
    assert "for bredt" in error.detail
    assert time.perf_counter() - started < QUICK_SECONDS


def test_identity_numbers_are_not_echoed() -> None:
    error = _parse_quickly(b"<a15076500565>\n</b>")
    assert "15076500565" not in error.detail
    redacted = redact_identity_numbers("fnr 15076500565, tlf 12345678")
    assert redacted == "fnr ***********, tlf 12345678"
    assert redact_identity_numbers("150765005651") == "150765005651"  # 12 digits: not an fnr


def test_valid_documents_parse() -> None:
    root = parse_xml(b"<?xml version='1.0'?><!-- kept --><a><!-- c --><b>x</b></a>")
    assert root.tag == "a"
    assert isinstance(root[0], etree._Comment)
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><a>Tønsberg</a>'.encode("latin-1")
    assert parse_xml(latin).text == "Tønsberg"
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><a>ø</a>'.encode("utf-16")
    assert parse_xml(utf16).text == "ø"
    bom = b"\xef\xbb\xbf<a>\xc3\xb8</a>"
    assert parse_xml(bom).text == "ø"


def test_doctype_text_inside_content_is_fine() -> None:
    root = parse_xml(b"<a><![CDATA[<!DOCTYPE x>]]><!-- <!ENTITY y 'z'> --></a>")
    assert root.text == "<!DOCTYPE x>"


def test_threads_each_use_their_own_parser() -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(200):
                results.append(parse_xml(b"<n>%d</n>" % index).text or "")
                with pytest.raises(NotXml):
                    parse_xml(b"<broken>")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(set(results)) == [str(i) for i in range(8)]
