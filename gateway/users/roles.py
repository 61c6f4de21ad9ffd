"""Roles and what each may do in the console. One table (``GRANTS``), checked in one place
(``allowed``); a page or action names the permission it needs."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Role(enum.StrEnum):
    """A console user's role; a user may have several."""

    SAKSBEHANDLER = "saksbehandler"  # case worker
    DRIFT = "drift"  # operator
    REVISOR = "revisor"  # auditor: reads, never changes


class Permission(enum.StrEnum):
    """Something a page or an action needs."""

    CASEWORK_READ = "casework.read"  # worklist, search, bill pages
    CASEWORK_WRITE = "casework.write"  # overrides, rebehandling (replay) preview and apply
    NATIONAL_ID_SEARCH = "casework.national_id_search"  # search by fødselsnummer (shown masked)
    OPERATIONS_READ = "operations.read"  # messages, replies, dead letters, depths, certificates
    OPERATIONS_WRITE = "operations.write"  # requeue and discard dead letters
    PAYOUT_READ = "payout.read"  # payout runs, next run, preview
    STATS = "stats"  # anonymised statistics export
    AUDIT_READ = "audit.read"  # the audit log


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.SAKSBEHANDLER: frozenset(
        {
            Permission.CASEWORK_READ,
            Permission.CASEWORK_WRITE,
            Permission.NATIONAL_ID_SEARCH,
            Permission.STATS,
        }
    ),
    Role.DRIFT: frozenset(
        {
            Permission.OPERATIONS_READ,
            Permission.OPERATIONS_WRITE,
            Permission.PAYOUT_READ,
            Permission.STATS,
        }
    ),
    Role.REVISOR: frozenset(
        {
            Permission.CASEWORK_READ,
            Permission.OPERATIONS_READ,
            Permission.PAYOUT_READ,
            Permission.STATS,
            Permission.AUDIT_READ,
        }
    ),
}

#: Norwegian names for the console.
ROLE_LABELS = {
    Role.SAKSBEHANDLER: "saksbehandler",
    Role.DRIFT: "drift",
    Role.REVISOR: "revisor (kun lesetilgang)",
}


def parse_roles(values: Iterable[str]) -> tuple[Role, ...]:
    """Role names (also comma-separated) as roles, sorted and without repeats; ``ValueError``
    naming an unknown one."""
    found: set[Role] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if not name:
                continue
            try:
                found.add(Role(name))
            except ValueError:
                known = ", ".join(r.value for r in Role)
                raise ValueError(f"unknown role {name!r} (known: {known})") from None
    return tuple(sorted(found))


def permissions(roles: Iterable[str]) -> frozenset[Permission]:
    """Everything ``roles`` may do together; unknown role names give nothing."""
    granted: set[Permission] = set()
    for name in roles:
        try:
            granted |= GRANTS[Role(name)]
        except ValueError:
            continue
    return frozenset(granted)


def allowed(roles: Iterable[str], permission: Permission) -> bool:
    """Whether a user with ``roles`` may do what ``permission`` names."""
    return permission in permissions(roles)
