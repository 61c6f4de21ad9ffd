"""The whole hostile corpus, and how to run a case through a pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from gateway.ebxml.unwrap import Truncated
from gateway.inbox.reading import EVIDENCE_BYTES
from gateway.pipeline import Pipeline
from tests.support.hostile import Case, answer
from tests.support.hostile_mime import (
    ebxml_cases,
    fs_cases,
    mime_cases,
    mime_truncation_cases,
    mime_variant_cases,
    signature_cases,
)
from tests.support.hostile_xml import (
    attribute_cases,
    compression_cases,
    encoding_cases,
    entity_cases,
    schema_cases,
    shape_cases,
    size_cases,
    truncation_cases,
)
from tests.support.pki import TestPki


def plain_cases() -> Iterator[Case]:
    """Every case that needs no partners and no file system (seeds never overlap)."""
    yield from entity_cases(1_000)
    yield from shape_cases(2_000)
    yield from encoding_cases(3_000)
    yield from truncation_cases(4_000)
    yield from schema_cases(5_000)
    yield from compression_cases(6_000)
    yield from size_cases(7_000)
    yield from mime_cases(8_000)
    yield from ebxml_cases(9_000)
    yield from attribute_cases(12_000)
    yield from mime_truncation_cases(13_000)
    yield from mime_variant_cases(14_000)


def secured_cases(pki: TestPki) -> Iterator[Case]:
    yield from signature_cases(10_000, pki)


def file_cases() -> Iterator[Case]:
    yield from fs_cases(11_000)


def as_received(case: Case) -> bytes:
    """What an inbox hands on for the case: an oversized one as its bounded evidence."""
    if not case.oversized:
        return case.data
    digest = hashlib.sha256(case.data).hexdigest()
    return Truncated(case.data[:EVIDENCE_BYTES], size=len(case.data), sha256=digest)


def run(pipeline: Pipeline, case: Case, ref: str) -> str:
    """The answer the pipeline gives the case (the second run's, for a replay)."""
    raw = as_received(case)
    result = pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{case.name}.msg")
    if case.replay:
        result = pipeline.handle(
            raw, source="spool", source_ref=ref + "-again", source_name=f"{case.name}.msg"
        )
    replies = [r.body for r in pipeline.store.intake.replies_for(result.received_id)]
    return answer(result, replies)
