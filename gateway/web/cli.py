"""``gateway web --config FILE``: the console and the claim status API (``server.py``). The
web stack is imported only when the command runs, so other commands do not pay for it."""

from __future__ import annotations

import argparse

from gateway.settings import add_config_option


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``web`` to the ``gateway`` parser."""
    web = subparsers.add_parser("web", help="serve the web console and the claim status API")
    add_config_option(web, "the gateway's config file, with its [web] section")


def run(args: argparse.Namespace) -> int | None:
    """Run ``gateway web``; None for any other command."""
    if getattr(args, "command", None) != "web":
        return None
    from gateway.web.server import serve

    return serve(args.config)
