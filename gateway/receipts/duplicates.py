"""A message we processed before is answered with the replies it got the first time.

Two idempotency keys find it: the ebXML ``CPAId + MessageId`` (the same ebXML message sent
again) and the MsgHead sender's ``HER id + MsgId`` (the same claim in a new ebXML message). The
same key with other content is not a duplicate but an error: answering it from the store would
tell the sender its bills were handled when they never were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from gateway.claims.model import MsgHead
from gateway.ebxml.model import MessageHeader
from gateway.errors import HeaderInconsistent, MsgIdReused
from gateway.records import PriorMessage, ReplyRecord, StoredReply
from gateway.security.cms_signed import SIGNATURE_SUFFIX

__all__ = ["IntakeLookups", "ebxml_duplicate", "msghead_duplicate", "replies_again"]


class IntakeLookups(Protocol):
    """The store's duplicate lookups."""

    def message_by_ebxml_id(self, cpa_id: str, message_id: str) -> PriorMessage | None: ...

    def message_by_msg_id(self, sender_her: str, msg_id: str) -> PriorMessage | None: ...

    def replies_for(self, received_id: int) -> Sequence[StoredReply]: ...


def ebxml_duplicate(
    store: IntakeLookups, header: MessageHeader, content_sha256: str
) -> int | None:
    """The received id of the same ebXML message processed before, or None; ``HeaderInconsistent``
    if its MessageId came before with other content."""
    prior = store.message_by_ebxml_id(header.cpa_id, header.message_id)
    if prior is None:
        return None
    if prior.content_sha256 and prior.content_sha256 != content_sha256:
        raise HeaderInconsistent(
            f"MessageId {header.message_id} er allerede mottatt med et annet innhold.",
            location="//eb:MessageHeader/eb:MessageData/eb:MessageId",
        )
    return prior.received_id


def msghead_duplicate(store: IntakeLookups, head: MsgHead, payload_sha256: str) -> int | None:
    """The received id of the same claim processed before, or None; ``MsgIdReused`` (E10) if
    the sender used its MsgId before for other content."""
    if not head.sender.her_id:
        return None
    prior = store.message_by_msg_id(head.sender.her_id, head.msg_id)
    if prior is None:
        return None
    if prior.payload_sha256 and prior.payload_sha256 != payload_sha256:
        raise MsgIdReused(
            f"MsgId {head.msg_id} er allerede brukt av denne avsenderen for en melding med "
            "et annet innhold. Send meldingen på nytt med en ny MsgId."
        )
    return prior.received_id


def replies_again(
    stored: Iterable[StoredReply],
    *,
    without_acknowledgments: bool,
    file_name: Callable[[str, str], str],
) -> list[ReplyRecord]:
    """The stored replies, to be sent again under new file names: ``file_name(kind, extension)``
    names them after the file that came in this time, as every reply is (the sender looks for
    the answer to the file it dropped); a detached signature keeps the name of the file it signs
    plus ``.p7s``. ``without_acknowledgments`` when this is a new ebXML message: the stored ack
    was for the earlier one."""
    again: list[ReplyRecord] = []
    renamed: dict[str, str] = {}  # stored file name -> the name it is sent again under
    for reply in stored:
        if without_acknowledgments and reply.kind == "acknowledgment":
            continue
        signed = reply.filename.removesuffix(SIGNATURE_SUFFIX)
        if reply.filename.endswith(SIGNATURE_SUFFIX) and signed in renamed:
            filename = renamed[signed] + SIGNATURE_SUFFIX
        else:
            filename = file_name(reply.kind, reply.filename.rpartition(".")[2])
        renamed[reply.filename] = filename
        again.append(
            ReplyRecord(
                kind=reply.kind,
                recipient=reply.recipient,
                filename=filename,
                body=reply.body,
                ebxml_message_id=reply.ebxml_message_id,
                ref_to_message_id=reply.ref_to_message_id,
            )
        )
    return again
