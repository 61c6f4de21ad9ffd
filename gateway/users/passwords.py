"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106's low-memory profile).

A login for an unknown or disabled user still verifies against a dummy hash, so the answer
takes as long as for a real one and does not tell which user names exist.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Shorter passwords are refused (NSM's and NIST's advice: length over composition rules).
MIN_LENGTH = 12
MAX_LENGTH = 1024

_HASHER = PasswordHasher()


def use_low_cost_for_tests() -> None:
    """Cheap argon2 parameters, so a test suite that adds many users stays fast. Never call
    this outside tests: the default parameters are what protects a stolen database."""
    global _HASHER
    _HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _dummy_hash.cache_clear()


class PasswordRejected(ValueError):
    """A new password does not meet the policy (the message is Norwegian)."""


def check_policy(password: str, username: str) -> None:
    """Refuse passwords that are too short, too long, or contain the user name."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"Passordet må ha minst {MIN_LENGTH} tegn.")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"Passordet kan ha høyst {MAX_LENGTH} tegn.")
    if username and username.lower() in password.lower():
        raise PasswordRejected("Passordet kan ikke inneholde brukernavnet.")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, with salt and parameters encoded in it."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (False for a malformed hash)."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("not a password anyone has")


def waste_time(password: str) -> None:
    """Verify against a dummy hash: as slow as a real check, always false."""
    verify_password(_dummy_hash(), password)
