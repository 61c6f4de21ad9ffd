"""The bad fixtures, as a table: each case names the file, the answer the pipeline must give,
what it tests (the README's words), and the mutation that makes it from a sound claim.

The file is ``bad/<expect>--<file>``, where ``<expect>`` is ``apprec-<status>-<code>`` (an
AppRec with that status and error code) or ``ebxml-<errorCode>`` (an ebXML MessageError and no
AppRec); ``tests/test_corpus.py`` reads the expectation back from the name.
"""

from __future__ import annotations

from dataclasses import dataclass

from fixture_corpus.building import BKM, KRAV_PATH, MH, OTHER_HER, Fixture, replace_once
from fixture_corpus.mutations import (
    BKM_2099,
    MSGHEAD_2099,
    Make,
    Start,
    antall,
    apprec_instead,
    as_is,
    bad_base64,
    behandlerkrav_alone,
    bill_text,
    bill_value,
    billion_laughs,
    binary_payload,
    claim_edit,
    content_id_elsewhere,
    cut,
    drop,
    drop_from_bill,
    ebms_3,
    encrypted_payload,
    envelope,
    envelope_halved,
    envelope_is_msghead,
    envelope_text,
    envelope_xxe,
    external_dtd,
    gzip_bomb,
    gzip_damaged,
    in_future,
    konto_with_child,
    latin1,
    message,
    must_understand,
    parts,
    payload,
    plain_mail,
    png,
    random_bytes,
    regningnr_first,
    replaced,
    route,
    same_guid,
    start_names_no_part,
    sum_plus,
    timestamp_in_words,
    unknown_element,
    whole,
    without_cpaid,
    without_manifest,
    xml,
    xxe,
)


def apprec(status: int, code: str) -> str:
    """The expectation of an AppRec with ``Status V=status`` and ``code`` among its errors."""
    return f"apprec-{status}-{code}"


def ebxml(error_code: str) -> str:
    """The expectation of an ebXML MessageError with this ``eb:errorCode`` and no AppRec."""
    return f"ebxml-{error_code}"


@dataclass(frozen=True, slots=True)
class BadCase:
    expect: str  # apprec(...) or ebxml(...)
    file: str  # what is wrong, in a few words, and the extension (.msg MIME, .xml bare)
    what: str  # the README's description
    make: Make

    @property
    def name(self) -> str:
        return f"{self.expect}--{self.file}"


LEGE_4 = Start("lege", bills=4)
NOT_TO_US = Start("lege", bills=2, receiver_her=OTHER_HER)

BAD: tuple[BadCase, ...] = (
    # --- not MIME, not XML: answered on the MIME level ---
    BadCase(
        ebxml("MimeProblem"),
        "random-bytes.msg",
        "4 KiB of random bytes: not MIME, not XML",
        whole(random_bytes),
    ),
    BadCase(ebxml("MimeProblem"), "png-image.msg", "a PNG image dropped as a claim", whole(png)),
    BadCase(ebxml("MimeProblem"), "empty-file.msg", "an empty file", whole(lambda _rng: b"")),
    BadCase(
        ebxml("MimeProblem"),
        "plain-text-mail.msg",
        "a text/plain mail, not multipart/related",
        whole(plain_mail),
    ),
    BadCase(
        ebxml("MimeProblem"),
        "truncated-mime.msg",
        "message cut at 60 %: no closing boundary",
        message(cut(3, 5)),
    ),
    BadCase(
        ebxml("MimeProblem"),
        "unknown-charset-envelope.msg",
        "SOAP envelope part declares charset x-klingon-8",
        message(lambda raw: replace_once(raw, b"charset=UTF-8", b"charset=x-klingon-8")),
    ),
    BadCase(
        ebxml("MimeProblem"),
        "payload-bad-base64.msg",
        "payload part is not valid base64",
        message(bad_base64),
    ),
    BadCase(
        ebxml("MimeProblem"),
        "start-names-no-part.msg",
        "multipart/related start= names a Content-ID no part has",
        message(start_names_no_part),
    ),
    # --- the SOAP envelope ---
    BadCase(
        ebxml("OtherXml"), "envelope-not-xml.msg", "SOAP part is plain text", parts(envelope_text)
    ),
    BadCase(
        ebxml("OtherXml"),
        "envelope-truncated.msg",
        "SOAP envelope XML cut in half",
        parts(envelope_halved),
    ),
    BadCase(
        ebxml("OtherXml"),
        "envelope-is-msghead.msg",
        "SOAP part holds the MsgHead instead of a SOAP:Envelope",
        parts(envelope_is_msghead),
    ),
    BadCase(
        ebxml("OtherXml"),
        "envelope-xxe-doctype.msg",
        "SOAP envelope with a DOCTYPE declaring a file:///etc/passwd entity",
        parts(envelope_xxe),
    ),
    BadCase(
        ebxml("ValueNotRecognized"),
        "wrong-to-her.msg",
        f"eb:To PartyId HER {OTHER_HER}, not ours",
        route(to_her=OTHER_HER),
    ),
    BadCase(
        ebxml("ValueNotRecognized"),
        "wrong-service.msg",
        "eb:Service Dialogmelding",
        route(service="Dialogmelding"),
    ),
    BadCase(
        ebxml("ValueNotRecognized"),
        "wrong-action.msg",
        "eb:Action Svarmelding (the action of our replies)",
        route(action="Svarmelding"),
    ),
    BadCase(
        ebxml("ValueNotRecognized"),
        "bad-timestamp.msg",
        'eb:Timestamp "i går"',
        envelope(timestamp_in_words),
    ),
    BadCase(
        ebxml("Inconsistent"),
        "manifest-points-to-missing-part.msg",
        "eb:Manifest references a cid no MIME part has",
        parts(content_id_elsewhere),
    ),
    BadCase(
        ebxml("Inconsistent"), "missing-cpaid.msg", "eb:CPAId left out", envelope(without_cpaid)
    ),
    BadCase(
        ebxml("Inconsistent"),
        "no-manifest.msg",
        "SOAP:Body without eb:Manifest: no payload reference",
        envelope(without_manifest),
    ),
    BadCase(
        ebxml("NotSupported"),
        "encrypted-payload.msg",
        "payload part application/pkcs7-mime (CMS enveloped data)",
        encrypted_payload,
    ),
    BadCase(
        ebxml("NotSupported"),
        "ebms-version-3.msg",
        'eb:MessageHeader eb:version="3.0"',
        envelope(ebms_3),
    ),
    BadCase(
        ebxml("NotSupported"),
        "unknown-mustunderstand-header.msg",
        "an unknown SOAP header block with mustUnderstand=1",
        envelope(must_understand),
    ),
    # --- T01: the payload is not (acceptable) XML ---
    BadCase(
        apprec(2, "T01"),
        "payload-truncated.msg",
        "MsgHead cut in half inside a sound MIME package",
        payload(cut(1, 2)),
    ),
    BadCase(
        apprec(2, "T01"),
        "truncated.xml",
        "bare MsgHead cut at two thirds",
        payload(cut(2, 3), bare=True),
    ),
    BadCase(
        apprec(2, "T01"),
        "xxe-file-entity.msg",
        "DOCTYPE with SYSTEM entity file:///etc/passwd",
        payload(xxe),
    ),
    BadCase(
        apprec(2, "T01"),
        "xxe-file-entity.xml",
        "the same, as a bare MsgHead",
        payload(xxe, bare=True),
    ),
    BadCase(
        apprec(2, "T01"),
        "billion-laughs.msg",
        "nested entities expanding to 10^9 'lol's",
        payload(billion_laughs),
    ),
    BadCase(
        apprec(2, "T01"),
        "external-dtd.msg",
        "DOCTYPE naming an external DTD over http",
        payload(external_dtd),
    ),
    BadCase(
        apprec(2, "T01"),
        "gzip-bomb.msg",
        "gzip payload that unpacks to more than 10 MiB",
        payload(gzip_bomb, compress=True),
    ),
    BadCase(
        apprec(2, "T01"),
        "gzip-corrupt.msg",
        "gzip payload with damaged deflate data",
        parts(gzip_damaged, compress=True),
    ),
    BadCase(
        apprec(2, "T01"),
        "latin1-declared-utf8.msg",
        "payload declared UTF-8 but encoded ISO-8859-1 (æøå)",
        payload(latin1, Start("lege")),
    ),
    BadCase(
        apprec(2, "T01"),
        "binary-payload.msg",
        "payload part holds random bytes",
        binary_payload,
    ),
    # --- T02: XML, but not valid ---
    BadCase(
        apprec(2, "T02"),
        "missing-guid.msg",
        "first Enkeltregning has no Guid",
        xml(drop_from_bill("Guid")),
    ),
    BadCase(
        apprec(2, "T02"),
        "missing-guid.xml",
        "the same, as a bare MsgHead",
        xml(drop_from_bill("Guid"), bare=True),
    ),
    BadCase(
        apprec(2, "T02"),
        "missing-sumkrav.msg",
        "first bill's Behandling has no SumKrav",
        xml(drop_from_bill("Behandling/SumKrav")),
    ),
    BadCase(
        apprec(2, "T02"),
        "missing-datotid.msg",
        "first bill has no DatoTid",
        xml(drop_from_bill("DatoTid")),
    ),
    BadCase(
        apprec(2, "T02"),
        "missing-msgid.msg",
        "MsgHead MsgInfo without MsgId",
        xml(drop(f"{MH}MsgInfo/{MH}MsgId")),
    ),
    BadCase(
        apprec(2, "T02"),
        "missing-krav-totals.msg",
        "BehandlerKrav without Krav (AntallRegninger, SumKravSamlet)",
        xml(drop(f"{KRAV_PATH}/{BKM}Krav")),
    ),
    BadCase(
        apprec(2, "T02"),
        "datotid-yesterday.msg",
        'DatoTid "yesterday"',
        xml(bill_text("DatoTid", "yesterday")),
    ),
    BadCase(
        apprec(2, "T02"),
        "datotid-norwegian-format.msg",
        'DatoTid "06.10.2026 09:00" (not xs:dateTime)',
        xml(bill_text("DatoTid", "06.10.2026 09:00")),
    ),
    BadCase(
        apprec(2, "T02"),
        "amount-with-comma.msg",
        'Takst Verdi V="12,50"',
        xml(bill_value("Behandling/Takst/Verdi", "12,50")),
    ),
    BadCase(
        apprec(2, "T02"),
        "amount-three-decimals.msg",
        'SumKrav Refusjon V="245.005"',
        xml(bill_value("Behandling/SumKrav/Refusjon", "245.005")),
    ),
    BadCase(
        apprec(2, "T02"),
        "amount-negative.msg",
        'Takst Verdi V="-245.00"',
        xml(bill_value("Behandling/Takst/Verdi", "-245.00")),
    ),
    BadCase(
        apprec(2, "T02"),
        "antall-zero.msg",
        "Takst Antall 0",
        xml(bill_text("Behandling/Takst/Antall", "0")),
    ),
    BadCase(
        apprec(2, "T02"),
        "kreditering-not-boolean.msg",
        'Kreditering "nei"',
        xml(bill_text("Kreditering", "nei")),
    ),
    BadCase(
        apprec(2, "T02"),
        "konto-with-junk-child.msg",
        "Konto (xs:string) with a child element",
        xml(konto_with_child),
    ),
    BadCase(
        apprec(2, "T02"),
        "unknown-element.msg",
        "Enkeltregning ends with an unknown Rabatt element",
        xml(unknown_element),
    ),
    BadCase(
        apprec(2, "T02"),
        "elements-out-of-order.msg",
        "RegningNr before Kreditering",
        xml(regningnr_first),
    ),
    # --- T10: well-formed, but not a message type we receive ---
    BadCase(
        apprec(2, "T10"),
        "bkm-unknown-namespace.msg",
        "BehandlerKrav in namespace bkm/2099-01-01: not a message type we take",
        payload(BKM_2099),
    ),
    BadCase(
        apprec(2, "T10"),
        "msghead-unknown-namespace.msg",
        "MsgHead in namespace msghead/2099-01-01",
        payload(MSGHEAD_2099),
    ),
    BadCase(
        apprec(2, "T10"),
        "apprec-sent-to-us.msg",
        "a MsgHead of type APPREC carrying an AppRec",
        replaced(apprec_instead),
    ),
    BadCase(
        apprec(2, "T10"),
        "bare-behandlerkrav.xml",
        "a BehandlerKrav without MsgHead",
        replaced(behandlerkrav_alone, bare=True),
    ),
    # --- E21: MsgHead addressed to someone else ---
    BadCase(
        apprec(2, "E21"),
        "msghead-receiver-not-us.msg",
        f"ebXML To is us, MsgHead Receiver is HER {OTHER_HER}",
        as_is(NOT_TO_US),
    ),
    BadCase(
        apprec(2, "E21"),
        "msghead-receiver-not-us.xml",
        f"bare MsgHead to HER {OTHER_HER}",
        as_is(NOT_TO_US, bare=True),
    ),
    # --- message rules ---
    BadCase(
        apprec(2, "SUMKRAV"),
        "sumkravsamlet-100-too-high.msg",
        "SumKravSamlet 100 kr more than the bills",
        claim_edit(sum_plus("100.00"), LEGE_4),
    ),
    BadCase(
        apprec(2, "SUMKRAV"),
        "sumkravsamlet-1-ore-short.msg",
        "SumKravSamlet 0.01 kr less than the bills",
        claim_edit(sum_plus("-0.01"), LEGE_4),
    ),
    BadCase(
        apprec(2, "ANTALLREGNINGER"),
        "one-too-many.msg",
        "AntallRegninger 5 for 4 bills",
        claim_edit(antall(5), LEGE_4),
    ),
    BadCase(
        apprec(2, "ANTALLREGNINGER"),
        "one-too-few.msg",
        "AntallRegninger 3 for 4 bills",
        claim_edit(antall(3), LEGE_4),
    ),
    # --- bill rules ---
    BadCase(
        apprec(3, "766"),
        "one-of-four-bills-in-future.msg",
        "bill 3 of 4 dated 2030-01-07",
        claim_edit(in_future([2]), Start("psykolog", bills=4)),
    ),
    BadCase(
        apprec(3, "766"),
        "two-of-five-bills-in-future.msg",
        "bills 1 and 5 of 5 dated 2030-01-07",
        claim_edit(in_future([0, 4]), Start("psykolog", bills=5)),
    ),
    BadCase(
        apprec(2, "766"),
        "all-bills-in-future.msg",
        "both bills dated 2030-01-07",
        claim_edit(in_future([0, 1]), Start("psykolog", bills=2)),
    ),
    BadCase(
        apprec(3, "DUPLIKAT"),
        "same-guid-twice-in-message.msg",
        "bills 1 and 2 share a Guid",
        claim_edit(same_guid(2), Start("lab", bills=4)),
    ),
    BadCase(
        apprec(3, "DUPLIKAT"),
        "same-guid-three-times.msg",
        "bills 1, 2 and 3 share a Guid",
        claim_edit(same_guid(3), Start("lab", bills=4)),
    ),
)


def bad_fixtures() -> list[Fixture]:
    """Every case of ``BAD``, made, in table order (the README lists them so)."""
    return [Fixture(f"bad/{case.name}", case.make(case.name), case.what) for case in BAD]
