"""Check digits of the numbers the register carries: account numbers, KIDs, organisation
numbers. Shared by the register import and the payout (pain.001, the payer's account)."""

from __future__ import annotations

__all__ = [
    "mod10_check_digit",
    "mod11_check_digit",
    "valid_account",
    "valid_kid",
    "valid_organisation_number",
]

_ACCOUNT_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_ORGANISATION_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else check


def valid_account(value: str) -> bool:
    """A Norwegian account number: 11 digits, the last a MOD11 check digit (weights 5432765432)."""
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return False
    return _mod11(value[:10], _ACCOUNT_WEIGHTS) == int(value[10])


def valid_organisation_number(value: str) -> bool:
    """An organisation number (Enhetsregisteret): 9 digits, the last a MOD11 check digit
    (weights 32765432)."""
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        return False
    return _mod11(value[:8], _ORGANISATION_WEIGHTS) == int(value[8])


def mod10_check_digit(payload: str) -> str:
    """The Luhn (MOD10) check digit of ``payload`` (digits)."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def mod11_check_digit(payload: str) -> str:
    """The MOD11 check digit of ``payload`` (weights 2..7 from the right); ``-`` for 10."""
    total = sum(int(ch) * (2 + i % 6) for i, ch in enumerate(reversed(payload)))
    check = (11 - total % 11) % 11
    return "-" if check == 10 else str(check)


def valid_kid(value: str) -> bool:
    """A KID: 2 to 25 characters, digits with a MOD10 or MOD11 check digit (MOD11 may be ``-``)."""
    if not 2 <= len(value) <= 25 or not value.isascii():
        return False
    payload, check = value[:-1], value[-1]
    if not payload.isdigit() or not (check.isdigit() or check == "-"):
        return False
    return check in (mod10_check_digit(payload), mod11_check_digit(payload))
