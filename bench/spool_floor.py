"""The spool benchmark's floor: the unavoidable CPU work per message, from primitives only.

Measured on a sample of the same messages, in this process, with CPU time (``thread_time``):

- **stdlib email**: parse the MIME message and decode its parts (``email.message_from_bytes``);
- **lxml parse**: the ebXML envelope and the MsgHead payload (a hardened ``XMLParser``);
- **XSD validate**: the payload against the MsgHead, BehandlerKrav and XML-DSig schema files,
  compiled once by lxml;
- **the signatures the configuration really requires**: as many as ``gateway.receipts.signing``
  says for this message (its count only: the cost is measured here): each one inclusive C14N of a
  real AppRec carrier and of a SignedInfo, SHA-256, and an RSA PKCS#1 v1.5 signature with the
  gateway's key (``cryptography``);
- **batched SQLite**: the message's rows (its raw bytes, the message, its bills and their lines,
  two replies of the real sizes) written with ``executemany`` into the project's schema, 32
  messages per transaction, WAL with ``synchronous=FULL``, as the daemon's store is.

No function of gateway's own runs in the floor: it is what any gateway would have to do.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from bench.common import Timings
from bench.spool_site import Claim

SQL_BATCH = 32
_PROJECT = Path(__file__).resolve().parent.parent
_SCHEMAS = _PROJECT / "schemas"
_SCHEMA_SQL = _PROJECT / "gateway" / "store" / "schema.sql"
_WRAPPER = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
<xs:import namespace="http://www.w3.org/2000/09/xmldsig#" schemaLocation="{ds}"/>
<xs:import namespace="http://www.kith.no/xmlstds/bkm/2006-12-20" schemaLocation="{bkm}"/>
<xs:import namespace="http://www.kith.no/xmlstds/msghead/2006-05-24" schemaLocation="{mh}"/>
</xs:schema>"""
_DS = "{http://www.w3.org/2000/09/xmldsig#}"


@dataclass(frozen=True, slots=True)
class FloorInput:
    """What the floor of one message needs besides its bytes."""

    claim: Claim
    signatures: int  # RSA signatures the configuration requires for its answer
    reply_sizes: tuple[int, ...]  # bytes of each reply the daemon stored for it
    bills: int


def measure_floor(
    inputs: Sequence[FloorInput], key_file: Path, apprec_carrier: bytes, work: Path
) -> tuple[list[float], Timings]:
    """CPU seconds per message of the floor, and its parts (see the module)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    schema = _schema()
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    carrier = etree.fromstring(apprec_carrier, parser)
    for signature in carrier.findall(f"{_DS}Signature"):
        carrier.remove(signature)
    db = _database(work / "floor.sqlite3")
    parts = Timings()
    totals: list[float] = []
    batch: list[tuple[FloorInput, bytes]] = []
    try:
        for n, item in enumerate(inputs):
            t0 = time.thread_time()
            message = email.message_from_bytes(item.claim.raw, policy=email.policy.compat32)
            bodies = [part.get_payload(decode=True) for part in message.walk()]
            decoded = [b for b in bodies if isinstance(b, bytes)]
            envelope, payload = decoded[0], decoded[-1]
            t1 = time.thread_time()
            etree.fromstring(envelope, parser)
            root = etree.fromstring(payload, parser)
            t2 = time.thread_time()
            if not schema.validate(root):
                raise RuntimeError(f"{item.claim.name}: not schema-valid: {schema.error_log}")
            t3 = time.thread_time()
            for _ in range(item.signatures):
                _sign(carrier, key)
            t4 = time.thread_time()
            batch.append((item, payload))
            if len(batch) == SQL_BATCH or n == len(inputs) - 1:
                _write(db, batch, n)
                batch = []
            t5 = time.thread_time()
            parts.add("stdlib email (parse, decode parts)", t1 - t0)
            parts.add("lxml parse (envelope, payload)", t2 - t1)
            parts.add("XSD validate (lxml)", t3 - t2)
            parts.add("signatures required (C14N, SHA-256, RSA)", t4 - t3)
            parts.add(f"SQLite rows, {SQL_BATCH} per transaction (amortised)", t5 - t4)
            totals.append(t5 - t0)
    finally:
        db.close()
    # The SQLite time lands on the message that closed its batch: spread it evenly.
    sql = parts.parts[f"SQLite rows, {SQL_BATCH} per transaction (amortised)"]
    share = sum(sql) / len(sql)
    totals = [t - s + share for t, s in zip(totals, sql, strict=True)]
    parts.parts[f"SQLite rows, {SQL_BATCH} per transaction (amortised)"] = [share] * len(sql)
    return totals, parts


def _schema() -> etree.XMLSchema:
    wrapper = _WRAPPER.format(
        ds=(_SCHEMAS / "xmldsig-core.xsd").as_uri(),
        bkm=(_SCHEMAS / "bkm-2006-12-20.xsd").as_uri(),
        mh=(_SCHEMAS / "msghead-v1.2.xsd").as_uri(),
    )
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), base_url=_SCHEMAS.as_uri() + "/"))


def _sign(document: etree._Element, key: rsa.RSAPrivateKey) -> bytes:
    """An enveloped XML-DSig signature's work: C14N and digest of the document, C14N of a
    SignedInfo, RSA."""
    digest = hashlib.sha256(etree.tostring(document, method="c14n")).digest()
    signed_info = etree.Element(f"{_DS}SignedInfo", nsmap={"ds": _DS[1:-1]})
    etree.SubElement(signed_info, f"{_DS}DigestValue").text = base64.b64encode(digest).decode()
    return key.sign(etree.tostring(signed_info, method="c14n"), padding.PKCS1v15(), hashes.SHA256())


def _database(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA_SQL.read_text(encoding="utf-8"))
    return db


def _write(db: sqlite3.Connection, batch: list[tuple[FloorInput, bytes]], last: int) -> None:
    """The batch's rows in one transaction, one ``executemany`` per table."""
    first = last - len(batch) + 1
    received, messages, bills, lines, replies = [], [], [], [], []
    for offset, (item, _payload) in enumerate(batch):
        n = first + offset
        raw = item.claim.raw
        received.append(
            (n, "2026-01-01T00:00:00", "spool", f"r{n}", "0" * 64, len(raw), raw, "accepted")
        )
        messages.append((n, n, f"cpa-{n}", f"m{n}", f"s{n}", "msg"))
        for b in range(item.bills):
            bill_id = n * 10 + b
            bills.append(
                (
                    bill_id,
                    n,
                    b,
                    "s",
                    "p",
                    f"g{bill_id}",
                    str(b),
                    "2026-01-01T08:00:00",
                    0,
                    0,
                    f"{n:011d}",
                    "FNR",
                    50000,
                    "godkjent",
                    50000,
                )
            )
            lines += [(bill_id, k, "takst", "2ad", None, 17500, 1) for k in range(3)]
        for k, size in enumerate(item.reply_sizes):
            replies.append((n, "apprec", f"f{n}-{k}", b"x" * size))
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO received(id, received_at, source, source_ref, sha256, size, raw, outcome) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        received,
    )
    db.executemany(
        "INSERT INTO messages(id, received_id, cpa_id, ebxml_message_id, sender_her, msg_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        messages,
    )
    db.executemany(
        "INSERT INTO bills(id, message_id, position, sender_her, practitioner_id, guid, "
        "regning_nr, dato_tid, kreditering, betalt_egenandel, patient_id, patient_id_type, "
        "sum_refusjon_ore, status, approved_ore) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        bills,
    )
    db.executemany(
        "INSERT INTO bill_lines(bill_id, position, kind, code, code_system, amount_ore, antall) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        lines,
    )
    db.executemany(
        "INSERT INTO replies(received_id, kind, recipient, filename, body, created_at, state) "
        "VALUES (?, ?, 'x', ?, ?, '2026-01-01T00:00:00', 'pending')",
        replies,
    )
    db.execute("COMMIT")
