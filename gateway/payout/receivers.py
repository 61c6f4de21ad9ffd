"""Who receives a bill's payout, and to which account: the receivers registry.

The registry is a TOML file (``payout.receivers_file``) with one ``[[receiver]]`` table per
party, keyed by HER id::

    [[receiver]]
    her_id = "8100001"              # required: the party's HER id (Adresseregisteret)
    name = "Fjordlegene AS"         # required
    enh_id = "987654321"            # optional: organisation number (Enhetsregisteret)
    account = "86011117947"         # optional: Norwegian account, 11 digits, MOD11 check digit
    kid = "1234567890128"           # optional: KID for the payment, MOD10 or MOD11 check digit
    owner_her_id = "8200001"        # optional: the regional health authority (RHF) owning this
                                    # institution; its laboratory refunds go to the owner
    mail_address = "post@fjord.no"  # optional: where the decision is mailed (else 'HER:<id>')
    cpa_id = "nav:qass:12345"       # optional: the ebXML CPA with this party
    ebxml_service = "BehandlerKrav" # optional: the Service/Action its decisions go with (default
    ebxml_action = "Utbetalingsvedtak"  # these two); its CPA must list them (payout.routing)

Who is paid (the *payee*) for a bill from sender S:

- a laboratory bill (``practitioner_type = 'lab'``) from an institution with an
  ``owner_her_id``: the owner (the RHF), which must itself be in the registry;
- otherwise S itself (the practice, or an institution no RHF owns).

A payee without an ``account`` (or a sender not in the registry at all) cannot be paid: its
payments are held (see ``gateway.payout.payees``) until the registry gives it an account.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import ConfigurationError

LAB = "lab"

_ACCOUNT_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


# --- check digits --------------------------------------------------------------------------------


def valid_account(value: str) -> bool:
    """A Norwegian account number: 11 digits, the last a MOD11 check digit (weights 5432765432)."""
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:10], _ACCOUNT_WEIGHTS, strict=True))
    check = (11 - total % 11) % 11
    return check != 10 and check == int(value[10])


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


# --- the registry --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receiver:
    """One party of the registry."""

    her_id: str
    name: str
    enh_id: str | None = None
    account: str | None = None
    kid: str | None = None
    owner_her_id: str | None = None
    mail_address: str | None = None
    cpa_id: str | None = None
    ebxml_service: str | None = None
    ebxml_action: str | None = None


@dataclass(frozen=True, slots=True)
class Payee:
    """Who a payment goes to. ``name`` is None for a sender the registry does not know."""

    her_id: str
    name: str | None
    enh_id: str | None
    account: str | None
    kid: str | None
    mail_address: str | None
    cpa_id: str | None


class ReceiverRegistry:
    """The receivers registry: HER id -> ``Receiver``, and the payee of a bill."""

    def __init__(self, receivers: Iterable[Receiver] = ()) -> None:
        self._by_her: dict[str, Receiver] = {}
        for receiver in receivers:
            if receiver.her_id in self._by_her:
                raise ConfigurationError(f"receiver {receiver.her_id} is listed twice")
            self._by_her[receiver.her_id] = receiver
        for receiver in self._by_her.values():
            owner = receiver.owner_her_id
            if owner is not None and owner not in self._by_her:
                raise ConfigurationError(
                    f"receiver {receiver.her_id}: owner_her_id {owner} is not in the registry"
                )
            if owner is not None and self._by_her[owner].owner_her_id is not None:
                raise ConfigurationError(
                    f"receiver {receiver.her_id}: its owner {owner} has an owner itself"
                )

    @classmethod
    def load(cls, path: Path | None) -> ReceiverRegistry:
        """Read the registry file; ``None`` gives an empty registry (everything is held)."""
        if path is None:
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"receivers registry not found: {path}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc
        entries = data.get("receiver", [])
        if not isinstance(entries, list):
            raise ConfigurationError(f"{path}: receiver must be an array of tables")
        return cls(_receiver(entry, f"{path}: receiver[{i}]") for i, entry in enumerate(entries))

    def get(self, her_id: str) -> Receiver | None:
        """The registry entry of ``her_id``, if any."""
        return self._by_her.get(her_id)

    def payee(self, sender_her: str, practitioner_type: str | None) -> Payee:
        """Who is paid for a bill from ``sender_her`` (see the module docstring)."""
        entry = self._by_her.get(sender_her)
        if entry is None:
            return Payee(sender_her, None, None, None, None, None, None)
        if practitioner_type == LAB and entry.owner_her_id is not None:
            entry = self._by_her[entry.owner_her_id]
        return Payee(
            entry.her_id,
            entry.name,
            entry.enh_id,
            entry.account,
            entry.kid,
            entry.mail_address,
            entry.cpa_id,
        )

    def __len__(self) -> int:
        return len(self._by_her)


_FIELDS = frozenset(
    {
        "her_id",
        "name",
        "enh_id",
        "account",
        "kid",
        "owner_her_id",
        "mail_address",
        "cpa_id",
        "ebxml_service",
        "ebxml_action",
    }
)


def _receiver(entry: Mapping[str, Any], where: str) -> Receiver:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where} must be a table")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise ConfigurationError(f"{where}.{unknown[0]} is not a known key")

    def text(key: str, *, required: bool = False) -> str | None:
        value = entry.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{where}.{key} must be a non-empty string, got {value!r}")
        return value.strip()

    def digits(key: str, *, required: bool = False) -> str | None:
        value = text(key, required=required)
        if value is not None and not (value.isascii() and value.isdigit()):
            raise ConfigurationError(f"{where}.{key} must be digits, got {value!r}")
        return value

    her_id = digits("her_id", required=True)
    name = text("name", required=True)
    assert her_id is not None and name is not None  # required above
    account = text("account")
    if account is not None and not valid_account(account):
        raise ConfigurationError(
            f"{where}.account must be 11 digits with a valid MOD11 check digit, got {account!r}"
        )
    kid = text("kid")
    if kid is not None:
        if account is None:
            raise ConfigurationError(f"{where}.kid needs an account")
        if not valid_kid(kid):
            raise ConfigurationError(
                f"{where}.kid must be 2-25 digits with a MOD10 or MOD11 check digit, got {kid!r}"
            )
    return Receiver(
        her_id=her_id,
        name=name,
        enh_id=digits("enh_id"),
        account=account,
        kid=kid,
        owner_her_id=digits("owner_her_id"),
        mail_address=text("mail_address"),
        cpa_id=text("cpa_id"),
        ebxml_service=text("ebxml_service"),
        ebxml_action=text("ebxml_action"),
    )
