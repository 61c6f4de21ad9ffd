"""No input crashes the pipeline: every byte string ends as a committed, answered intake."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.pipeline import Pipeline
from gateway.records import Outcome
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message

_HEAD, _KRAV = make_claim(
    rng=random.Random(3),
    practitioner="lab",
    bills=2,
    sender=default_sender(),
    receiver=default_receiver(),
    start=datetime(2026, 10, 1, 9, 0),
)
XML = msghead_with_bkm(_HEAD, _KRAV)
MESSAGE = ebxml_message(XML, rng=random.Random(3))
_refs = itertools.count()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    base = draw(st.sampled_from([XML, MESSAGE]))
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "cut":
            del data[at:]
        elif action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=st.one_of(mutated(), st.binary(max_size=512)))
def test_any_input_is_answered_never_raised(
    make_pipeline: Callable[..., Pipeline], raw: bytes
) -> None:
    pipeline = make_pipeline()
    ref = f"p{next(_refs)}"
    result = pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{ref}.msg")
    assert result.outcome is not Outcome.FAILED
    if result.outcome in (Outcome.REJECTED, Outcome.EBXML_ERROR):
        assert result.replies, "a rejected message is always answered"
