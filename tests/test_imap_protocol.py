"""The IMAP protocol helpers on reply lines as aioimaplib hands them over: no server needed.

aioimaplib gives a reply as a list of lines: ``bytes`` for protocol lines, a ``bytearray`` for a
message literal, and the tagged completion text last.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.inbox.imap.protocol import (
    MAX_BATCH_BYTES,
    batches_by_bytes,
    message_id_of,
    parse_bodies,
    parse_search,
    parse_sizes,
    parse_uidvalidity,
    quote,
    response_text,
    uid_set,
)


class Reply:
    """The shape of an aioimaplib ``Response``: ``result`` and ``lines``."""

    def __init__(self, result: str, lines: list[bytes | bytearray]) -> None:
        self.result = result
        self.lines = lines


def expand(text: str) -> set[int]:
    """The UIDs an IMAP sequence set names (the inverse of ``uid_set``)."""
    found: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition(":")
        found.update(range(int(first), int(last or first) + 1))
    return found


# --- sequence sets and quoting -----------------------------------------------------------------


def test_uid_set_is_compact() -> None:
    assert uid_set([3, 1, 2, 7, 9, 10, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"
    with pytest.raises(ValueError, match="empty"):
        uid_set([])


@given(st.sets(st.integers(min_value=1, max_value=10_000), min_size=1))
def test_uid_set_names_exactly_the_uids_given(uids: set[int]) -> None:
    text = uid_set(uids)
    assert expand(text) == uids
    # Compact: no two ranges could have been one.
    ranges = [sorted(expand(part)) for part in text.split(",")]
    assert all(a[-1] + 1 < b[0] for a, b in itertools.pairwise(ranges))


def test_quote_and_response_text() -> None:
    assert quote("Processed") == '"Processed"'
    assert response_text(Reply("NO", [b"* junk", b"[AUTHENTICATIONFAILED] failed."])) == (
        "[AUTHENTICATIONFAILED] failed."
    )
    assert response_text(Reply("NO", [])) == ""
    assert response_text(Reply("NO", [b"x" * 500])) == "x" * 300


# --- replies ------------------------------------------------------------------------------------


def test_parse_search_takes_the_uid_lines_and_not_the_completion() -> None:
    lines: list[bytes | bytearray] = [b"4 2 9", b"11", b"2 3", b"Search completed (0.001 secs)."]
    assert parse_search(lines) == [2, 3, 4, 9, 11]
    assert parse_search([b"Search completed."]) == []
    # A last line of digits is the completion text all the same, never a UID.
    assert parse_search([b"5", b"7"]) == [5]


def test_parse_sizes_reads_uid_and_size_in_any_order() -> None:
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 7 RFC822.SIZE 1234)",
        b"2 FETCH (RFC822.SIZE 99 UID 8)",
        b"3 FETCH (UID 9)",  # no size: left out
        b"* 4 EXISTS",
        b"Fetch completed.",
    ]
    assert parse_sizes(lines) == {7: 1234, 8: 99}


def test_parse_bodies_takes_each_literal_with_its_uid() -> None:
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 7 BODY[] {5}",
        bytearray(b"first"),
        b")",
        # Some servers put the UID after the literal, in the closing line.
        b"2 FETCH (BODY[] {6}",
        bytearray(b"second"),
        b" UID 8)",
        # A literal without any UID cannot be placed: left out.
        b"3 FETCH (BODY[] {4}",
        bytearray(b"lost"),
        b")",
        b"Fetch completed.",
    ]
    assert parse_bodies(lines) == {7: b"first", 8: b"second"}
    assert parse_bodies([b"Fetch completed."]) == {}


def test_parse_uidvalidity() -> None:
    lines: list[bytes | bytearray] = [
        b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        b"OK [UIDVALIDITY 1700000001] UIDs valid",
        b"OK [UIDNEXT 5] Predicted next UID",
        b"[READ-WRITE] Select completed.",
    ]
    assert parse_uidvalidity(lines) == 1700000001
    assert parse_uidvalidity([b"[READ-WRITE] Select completed."]) is None


def test_batches_by_bytes_cut_at_the_limit_and_skip_expunged_mails() -> None:
    half = MAX_BATCH_BYTES // 2
    sizes = {1: half, 2: half, 3: 1, 4: MAX_BATCH_BYTES * 2, 6: 10}
    # 5 has no size: expunged between SEARCH and FETCH.
    assert list(batches_by_bytes([1, 2, 3, 4, 5, 6], sizes)) == [[1, 2], [3], [4], [6]]
    assert list(batches_by_bytes([], {})) == []


def test_message_id_of() -> None:
    raw = b"From: a@b\r\nMessage-ID: <mail-1@sender.test>\r\n\r\nbody\r\n"
    assert message_id_of(raw) == "<mail-1@sender.test>"
    assert message_id_of(b"Message-Id:\r\n  <folded@x>\r\n\r\nbody") == "<folded@x>"
    assert message_id_of(b"Subject: none\n\nMessage-ID: <in-body@x>\n") is None
