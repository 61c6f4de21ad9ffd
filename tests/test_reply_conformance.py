"""Every reply the gateway produces validates against the OFFICIAL schemas.

Runs real messages through the pipeline, then validates the replies it wrote: each ebXML
envelope (Acknowledgment, MessageError, the AppRec's carrier message) against the official ebMS
2.0 schemas, and each signed MsgHead with its AppRec against the official MsgHead v1.2 and AppRec
v1.0 schemas. Skips with a reason where ../shared/standards is absent.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway.ebxml import mime
from gateway.ebxml.namespaces import APPREC_NS
from gateway.pipeline import Pipeline
from gateway.receipts.apprec import apprec_from_msghead
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import Route, ebxml_message
from gateway.validation.catalog import SchemaCatalog

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def official(standards: Path) -> SchemaCatalog:
    catalog = SchemaCatalog.default(extra_dirs=[standards])
    # The official files must really be the ones in use for these namespaces.
    for namespace in (
        "http://www.kith.no/xmlstds/msghead/2006-05-24",
        APPREC_NS,
        "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd",
        "http://schemas.xmlsoap.org/soap/envelope/",
    ):
        assert standards in catalog.source_of(namespace).parents, namespace
    return catalog


@pytest.fixture(scope="module")
def official_apprec(standards: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    doc = etree.parse(str(standards / "apprec-v1.0" / "AppRec-v1.0.xsd"), parser)
    return etree.XMLSchema(doc)


def messages() -> list[tuple[str, bytes]]:
    head, krav = make_claim(
        rng=random.Random(21),
        practitioner="tannlege",
        bills=3,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 1, 9, 0),
    )
    xml = msghead_with_bkm(head, krav)
    bills = list(krav.regninger)
    bills[0] = dataclasses.replace(bills[0], dato_tid=datetime(2030, 1, 1, 8, 0))
    partly = msghead_with_bkm(
        dataclasses.replace(head, msg_id="partly"),
        dataclasses.replace(krav, regninger=tuple(bills)),
    )
    invalid = msghead_with_bkm(dataclasses.replace(head, msg_id="t02"), krav).replace(
        b"<DatoTid>", b"<DatoTid>x", 1
    )
    return [
        ("accepted", ebxml_message(xml, rng=random.Random(1))),
        ("partly", ebxml_message(partly, rng=random.Random(2))),
        ("t02", ebxml_message(invalid, rng=random.Random(3))),
        ("t01", ebxml_message(xml[:500], rng=random.Random(4))),
        ("wrong-action", ebxml_message(xml, rng=random.Random(5), route=Route(action="Nei"))),
        ("not-mime", b"this is not a message at all"),
        ("bare", msghead_with_bkm(dataclasses.replace(head, msg_id="bare"), krav)),
        ("bare-broken", b"<MsgHead"),
    ]


def test_every_reply_validates_officially(
    make_pipeline: Callable[..., Pipeline],
    official: SchemaCatalog,
    official_apprec: etree.XMLSchema,
) -> None:
    pipeline = make_pipeline()
    for name, raw in messages():
        pipeline.handle(raw, source="spool", source_ref=name, source_name=f"{name}.msg")
    replies = pipeline.store.outbox.pending_replies()
    kinds = {r.filename.split(".")[-3] for r in replies}
    assert kinds == {"acknowledgment", "message_error", "apprec"}
    for reply in replies:
        if reply.filename.endswith(".eml"):
            package = mime.unwrap(reply.body)
            report = official.validate_bytes(package.envelope.body)
            assert report.valid, f"{reply.filename}: {report.summary()}"
            carriers = [part.body for part in package.attachments]
        else:
            carriers = [reply.body]
        for carrier in carriers:
            report = official.validate_bytes(carrier)
            assert report.valid, f"{reply.filename}: {report.summary()}"
            apprec = apprec_from_msghead(carrier)
            assert official_apprec.validate(apprec), (
                reply.filename,
                official_apprec.error_log,
            )
