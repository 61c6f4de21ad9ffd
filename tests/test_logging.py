"""No national identity number reaches a log line, whatever the call site passes."""

from __future__ import annotations

import json

import pytest
import structlog

from gateway.logs import REDACTED, configure_logging, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pasient 15076500565 ble avvist", f"pasient {REDACTED} ble avvist"),
        ("fil 15076500565.msg", f"fil {REDACTED}.msg"),
        ("HER 8141253 og orgnr 993954896", "HER 8141253 og orgnr 993954896"),
        ("123456789012 is twelve digits", "123456789012 is twelve digits"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_every_logged_value_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    try:
        log = structlog.get_logger("test")
        log.info(
            "bill 15076500565 rejected",
            patient=15076500565,
            nested={"ids": ["21016400952"]},
            error=ValueError("bad fnr 21016400952"),
        )
    finally:
        structlog.reset_defaults()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert "15076500565" not in line and "21016400952" not in line
    assert record["patient"] == REDACTED
    assert record["nested"] == {"ids": [REDACTED]}


def test_a_bill_repr_never_shows_the_patient_id() -> None:
    import random
    from datetime import datetime

    from gateway.testing.claims import default_receiver, default_sender, make_claim

    _, krav = make_claim(
        rng=random.Random(1),
        practitioner="lege",
        bills=2,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 1, 5, 9, 0),
    )
    text = repr(krav) + str(krav.regninger)
    assert all(bill.patient.id not in text for bill in krav.regninger)
