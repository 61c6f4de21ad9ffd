"""Match a partner's ebXML Acknowledgment or MessageError to the reply of ours it answers.

The pipeline commits every incoming signal as a received row (outcome ``signal``) and then calls
``match_signal`` with that row's id. The signal's ``RefToMessageId`` names our message's ebXML
MessageId; the first signal settles the reply (``ack_state`` 'acknowledged' or 'error') and
stops its resends. A signal that matches nothing of ours is logged; its received row is kept.
A MessageError that carries only warnings is not a failure (in ebMS 2.0 a Warning means the
message was processed) and leaves the reply waiting for its Acknowledgment.
"""

from __future__ import annotations

from datetime import datetime

from gateway.ebxml.model import EbxmlMessage
from gateway.ebxml.signals import ACTION_ACKNOWLEDGMENT, ACTION_MESSAGE_ERROR
from gateway.logs import get_logger
from gateway.records import SignalMatch
from gateway.store import Store

log = get_logger("outbox.signals")


def match_signal(
    store: Store,
    message: EbxmlMessage,
    received_id: int | None,
    *,
    now: datetime | None = None,
) -> list[SignalMatch]:
    """Record ``message`` (an Acknowledgment or MessageError) against our reply; return what
    it matched (empty: not a signal, a warning only, or not one of ours)."""
    header = message.header
    if header.action == ACTION_ACKNOWLEDGMENT:
        kind: str = "acknowledgment"
        ref = message.acknowledgment_ref or header.ref_to_message_id
    elif header.action == ACTION_MESSAGE_ERROR:
        kind = "message_error"
        ref = header.ref_to_message_id
        if message.error_list and all(e.severity == "Warning" for e in message.error_list):
            log.warning(
                "signal_warning_only",
                ref_to=ref,
                codes=[e.code for e in message.error_list],
                received_id=received_id,
            )
            return []
    else:
        return []
    if not ref:
        log.warning("signal_without_reference", action=header.action, received_id=received_id)
        return []
    matches = store.acks.record_signal(
        ref,
        "acknowledgment" if kind == "acknowledgment" else "message_error",
        received_id,
        now=now,
    )
    if not matches:
        log.warning(
            "signal_unmatched",
            action=header.action,
            ref_to=ref,
            from_her=header.from_party.id_of("HER"),
            received_id=received_id,
        )
        return []
    for match in matches:
        fields = {
            "reply_id": match.reply_id,
            "reply_kind": match.reply_kind,
            "ref_to": ref,
            "ack_state": match.ack_state,
            "received_id": received_id,
        }
        if not match.changed:
            log.info("signal_repeated", **fields)
        elif kind == "message_error":
            log.error(
                "reply_refused_by_partner",
                errors=[f"{e.code}: {e.description}" for e in message.error_list],
                **fields,
            )
        else:
            log.info("reply_acknowledged", **fields)
    return matches
