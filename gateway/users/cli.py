"""``gateway users add|disable|enable|roles|password|list``: console accounts.

Passwords are read from the terminal (asked twice) or, with ``--password-stdin``, as the first
line of standard input (for scripts); never from the command line, where ``ps`` and the shell
history would keep them. Every change is written to the audit log as ``cli:<login name>``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.config import Config
from gateway.settings import add_config_option
from gateway.store import Store
from gateway.users.accounts import AccountError, Accounts
from gateway.users.passwords import PasswordRejected
from gateway.users.roles import ROLE_LABELS, Role, parse_roles


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``users`` with its subcommands to the ``gateway`` parser."""
    roles_help = "saksbehandler, drift or revisor (repeat, or comma-separate, for several)"
    users = subparsers.add_parser("users", help="web console accounts: add, disable, roles")
    sub = users.add_subparsers(dest="users_command", required=True)
    add = sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--role", action="append", required=True, help=roles_help)
    add.add_argument("--name", default="", help="full name shown in the console")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    disable = sub.add_parser("disable", help="stop a user from logging in (ends sessions)")
    disable.add_argument("username")
    enable = sub.add_parser("enable", help="let a disabled user log in again")
    enable.add_argument("username")
    roles = sub.add_parser("roles", help="set a user's roles")
    roles.add_argument("username")
    roles.add_argument("--set", dest="roles", action="append", required=True, help=roles_help)
    password = sub.add_parser("password", help="set a new password (ends sessions)")
    password.add_argument("username")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    listing = sub.add_parser("list", help="every user, with roles and state")
    for command in (add, disable, enable, roles, password, listing):
        add_config_option(command)


def run(args: argparse.Namespace, *, ask: Callable[[str], str] = getpass.getpass) -> int | None:
    """Run a ``users`` command; None when ``args`` is another command."""
    if getattr(args, "command", None) != "users":
        return None
    by = "cli:" + _login_name()
    try:
        with _accounts(args.config) as accounts:
            command = args.users_command
            if command == "add":
                roles = _roles(args.role)
                secret = _password(args.username, ask, stdin=args.password_stdin)
                record = accounts.add(
                    args.username, secret, roles, display_name=args.name, by=by
                )
                print(f"added {record.username} ({', '.join(record.roles)})")
            elif command in ("disable", "enable"):
                accounts.set_disabled(args.username, command == "disable", by=by)
                print(f"{args.username}: {command}d")
            elif command == "roles":
                roles = _roles(args.roles)
                accounts.set_roles(args.username, roles, by=by)
                print(f"{args.username}: {', '.join(r.value for r in roles)}")
            elif command == "password":
                secret = _password(args.username, ask, stdin=args.password_stdin)
                accounts.set_password(args.username, secret, by=by)
                print(f"{args.username}: new password set; sessions ended")
            else:
                for u in accounts.users():
                    labels = ", ".join(ROLE_LABELS.get(Role(r), r) for r in u.roles)
                    state = "disabled" if u.disabled else "active"
                    print(f"{u.username:<20} {state:<9} {labels:<40} {u.display_name}")
    except (AccountError, PasswordRejected, ValueError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    return 0


@contextmanager
def _accounts(config_path: Path) -> Iterator[Accounts]:
    store = Store(Config.from_toml(config_path).database)
    try:
        yield Accounts(store.users)
    finally:
        store.close()


def _roles(values: list[str]) -> tuple[Role, ...]:
    return parse_roles(values)


def _password(username: str, ask: Callable[[str], str], *, stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = ask(f"Password for {username}: ")
    if ask("Again: ") != first:
        raise ValueError("the passwords differ")
    return first


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
