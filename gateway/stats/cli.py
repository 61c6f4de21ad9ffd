"""The statistics commands of ``gateway``: ``stats export|import-population|import-residence``.

    gateway stats export --measure M --by a,b --period P --format F --out FILE [--config FILE]
    gateway stats import-population FILE [--config FILE]
    gateway stats import-residence FILE [--config FILE]

``gateway.cli`` adds them with ``add_commands`` and runs them with ``run`` (which returns None
for a command that is not one of these). Errors (``StatsError``, unreadable files) print one
line on stderr and exit 1. ``export`` reports its stages on stderr as it goes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gateway.errors import StorageError
from gateway.settings import add_config_option
from gateway.stats.formats import FORMATS, FormatError, write_table
from gateway.stats.model import AREA_LEVELS, DIMENSIONS, MEASURES
from gateway.stats.periods import StatsError
from gateway.stats.published import PUBLISHED, Published
from gateway.store.engine import Engine

if TYPE_CHECKING:  # the cube needs numpy: imported only when a table is made
    from gateway.stats.cube import Exclusion


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stats`` with its subcommands to the ``gateway`` parser."""
    stats = subparsers.add_parser(
        "stats", help="anonymised aggregate statistics: export, reference data imports"
    )
    stats_sub = stats.add_subparsers(dest="stats_command", required=True)

    export = stats_sub.add_parser(
        "export",
        help="export a statistics table (cells under 5 persons are suppressed)",
        description="Export one measure for one period, grouped by the given dimensions. "
        "Cells that count fewer than 5 persons are suppressed (:), as are the cells that would "
        "reveal them; the file's legend says which and why.",
    )
    export.add_argument(
        "--table",
        choices=sorted(PUBLISHED),
        help="a published table by name (sets --measure, --by, --only and --share-of)",
    )
    export.add_argument("--measure", choices=MEASURES)
    export.add_argument(
        "--by",
        type=_dimensions,
        help=f"comma-separated dimensions, in order: {', '.join(DIMENSIONS)} "
        f"(one area level of {'|'.join(AREA_LEVELS)})",
    )
    export.add_argument(
        "--period", required=True, help='"2023" (year), "2023-T1" (tertial) or "2023-05" (month)'
    )
    export.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        help="output format (default: from the --out file name's suffix)",
    )
    export.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="DIM=V1|V2",
        help="count only bills with one of these values of a dimension (repeatable), e.g. "
        "praksistype=fysioterapeut",
    )
    export.add_argument("--share-of", help="add percentage shares of the total over this dimension")
    export.add_argument(
        "--exclusion-file",
        type=Path,
        help="CSV (kommune,navn) of municipalities whose persons aged 90+ are left out at "
        "municipality level (default: the packaged list)",
    )
    export.add_argument(
        "--no-exclusion", action="store_true", help="do not apply the 90+ exclusion"
    )
    export.add_argument("--out", required=True, type=Path, help="the file to write")
    add_config_option(export)
    export.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    population = stats_sub.add_parser(
        "import-population",
        help="import inhabitants per kommune, age group and sex (CSV; replaces that year)",
    )
    population.add_argument("file", type=Path)
    add_config_option(population)

    residence = stats_sub.add_parser(
        "import-residence", help="import patients' municipality of residence (CSV)"
    )
    residence.add_argument("file", type=Path)
    add_config_option(residence)


def run(args: argparse.Namespace) -> int | None:
    """Run a ``stats`` command; None when ``args`` is another command."""
    if getattr(args, "command", None) != "stats":
        return None
    try:
        if args.stats_command == "export":
            return _export(args)
        if args.stats_command == "import-population":
            return _import(args, "population")
        if args.stats_command == "import-residence":
            return _import(args, "residence")
    except (StatsError, FormatError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        name = exc.filename if exc.filename is not None else ""
        print(f"gateway: {name}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return None  # pragma: no cover - argparse enforces the subcommands


def _dimensions(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one dimension")
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown dimension {', '.join(unknown)} (choose from {', '.join(DIMENSIONS)})"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("a dimension is given twice")
    if sum(n in AREA_LEVELS for n in names) > 1:
        raise argparse.ArgumentTypeError(f"use one area level of {', '.join(AREA_LEVELS)}")
    return names


@contextmanager
def _database(config_path: Path) -> Iterator[tuple[Engine, Path | None]]:
    """The claims database of the config, open (an absent SQLite file is an error, not made),
    and the statistics mirror's directory (``mirror.mirror_directory``)."""
    from gateway.config import Config
    from gateway.stats.mirror import mirror_directory
    from gateway.store import Store

    database = Config.from_toml(config_path).database
    if database.path is not None and not database.path.is_file():
        raise StatsError(f"no database at {database.path}")
    try:
        store = Store(database)
    except StorageError as exc:
        raise StatsError(str(exc)) from exc
    try:
        yield store.engine, mirror_directory(database)
    finally:
        store.close()


def output_format(fmt: str | None, out: Path) -> str:
    """The format asked for, else the one the file name's suffix names."""
    if fmt is not None:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise StatsError(
        f"cannot tell the format from {out.name!r}: give --format ({'|'.join(FORMATS)})"
    )


class Progress:
    """Stage lines on stderr, each with the time since the export began."""

    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled
        self._start = time.monotonic()

    def __call__(self, message: str) -> None:
        if self._enabled:
            elapsed = time.monotonic() - self._start
            print(f"stats: [{elapsed:6.1f}s] {message}", file=self._stream, flush=True)


def _export(args: argparse.Namespace) -> int:
    from gateway.stats.build import build_table

    out: Path = args.out
    fmt = output_format(args.fmt, out)
    if not out.parent.is_dir():
        raise StatsError(f"{out.parent}: no such directory")
    progress: Callable[[str], None] = Progress(sys.stderr, enabled=not args.quiet)
    request = _request(args)
    progress(f"{request.measure} etter {', '.join(request.by)}, periode {args.period}")
    with _database(args.config) as (database, mirror):
        table = build_table(
            database,
            measure=request.measure,
            by=request.by,
            period=args.period,
            only=request.only,
            share_of=request.share_of,
            exclusion=_exclusion(args),
            progress=progress,
            mirror=mirror,
        )
    suppressed = sum(1 for c in table.cells if c.value is None)
    progress(f"skriver {fmt}: {len(table.cells)} celler, {suppressed} prikket")
    # Write next to the target and rename: a reader never sees half a file.
    partial = out.with_name(out.name + ".partial")
    try:
        write_table(table, partial, fmt)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    progress("ferdig")
    print(f"wrote {out} ({fmt}, {len(table.cells)} cells, {suppressed} suppressed)")
    return 0


def _request(args: argparse.Namespace) -> Published:
    """The table asked for: a published one (``--table``), else ``--measure`` and ``--by``."""
    if args.table is not None:
        if args.measure or args.by or args.only or args.share_of:
            raise StatsError("--table sets the measure, dimensions and filters: give no others")
        return PUBLISHED[args.table]
    if not args.measure or not args.by:
        raise StatsError("give --table NAME, or --measure and --by")
    only: dict[str, tuple[str, ...]] = {}
    for item in args.only:
        name, sep, values = item.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise StatsError(f"--only {item!r}: expected DIMENSION=VALUE[|VALUE...]")
        only[name.strip()] = tuple(v.strip() for v in values.split("|") if v.strip())
    return Published("", "", args.measure, tuple(args.by), only, args.share_of)


def _exclusion(args: argparse.Namespace) -> Exclusion | None:
    from gateway.stats.cube import Exclusion
    from gateway.stats.exclusions import load_exclusion

    if args.no_exclusion:
        return Exclusion(frozenset())
    return None if args.exclusion_file is None else load_exclusion(args.exclusion_file)


def _import(args: argparse.Namespace, kind: str) -> int:
    from gateway.stats.reference import import_population, import_residence

    path: Path = args.file
    if not path.is_file():
        raise StatsError(f"{path}: no such file")
    importer = import_population if kind == "population" else import_residence
    with _database(args.config) as (database, _mirror):
        rows = importer(database, path)
    print(f"{path}: {rows} {kind} rows imported")
    return 0
