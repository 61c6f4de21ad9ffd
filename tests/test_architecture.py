"""The package stays a house with floors: no circle between rooms, no import that runs up, no
module too big to read.

A *room* is a top-level module or package of ``gateway`` (``gateway/store/`` is the room
``store``). ``FLOORS`` lists the rooms from the ground up. A room may import rooms on its own
floor or below, never above, and no set of rooms may import each other in a circle. Imports
inside functions count: a local import is still a dependency. A new room must be given a floor
here, which is the moment to think about where it belongs.

One exception: a room's *settings module* (a ``config.py`` inside its package, read with
``gateway.settings.Table``) may be read from anywhere, since it is what ``gateway.adapters``
collects to check the whole configuration at load. Reading it is not a dependency on the room,
so a settings module must stay a leaf: it imports only the ground, other settings modules and the
few pure helpers in ``SETTINGS_MAY_IMPORT``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway

PACKAGE = Path(gateway.__file__).resolve().parent

#: Rooms from the ground floor up (README, "How a message flows", shows the same floors).
FLOORS: tuple[frozenset[str], ...] = tuple(
    frozenset(floor.split())
    for floor in (
        # the ground: the project's errors, time, logs, durable files, records and protocols
        "errors clock logs files records settings transports",
        # what a message and the configuration are
        "claims tariffs validation config practices",
        # reading them: the rules, the ebXML envelope
        "rules ebxml",
        # trusting and keeping them
        "security store",
        # partners, intake sources and what reads the store
        "partners inbox stats casework users",
        # answers and their delivery
        "receipts outbox",
        # what builds on answers and delivery
        "payout deliveries processing service testing",
        # the conductor
        "pipeline",
        # the per-message work around it
        "intake",
        # every adapter's settings, read and checked together
        "adapters",
        # the console and the claim status API (served alone or by the daemon)
        "web",
        # putting it together
        "wiring daemon validate_files validate_decide validate_signatures",
        # the command line
        "cli __main__",
    )
)

#: Modules allowed over ``MAX_LINES``, each with its reason.
LONG_MODULES: dict[str, str] = {
    "testing/claims.py": "a test data builder: one builder per claim element, read as a table",
}
MAX_LINES = 500

#: What a settings module may import besides the ground floor and other settings modules.
SETTINGS_MAY_IMPORT = frozenset(
    {
        "gateway.practices.accounts",  # an account number's check digits, pure
        "gateway.users.roles",  # the console's role names, pure
        "gateway.stats.published",  # the published tables a delivery may name, data
    }
)


def _floor_of() -> dict[str, int]:
    floors: dict[str, int] = {}
    for level, rooms in enumerate(FLOORS):
        for room in rooms:
            assert room not in floors, f"{room} is on two floors"
            floors[room] = level
    return floors


def _modules() -> Iterator[tuple[str, Path]]:
    """(room, path) of every module of the package but its own ``__init__``."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        yield parts[0], path


def _imported_modules(path: Path) -> Iterator[str]:
    """Every ``gateway`` module or name ``path`` imports (``from a import b`` gives ``a.b``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        yield from (name for name in names if name.startswith("gateway."))


def _settings_module(name: str) -> str | None:
    """The settings module ``name`` is or is inside (``gateway.web.config.WebConfig`` gives
    ``gateway.web.config``), or None."""
    parts = name.split(".")
    for end in range(3, len(parts) + 1):
        if (
            parts[end - 1] == "config"
            and PACKAGE.joinpath(*parts[1:end]).with_suffix(".py").is_file()
        ):
            return ".".join(parts[:end])
    return None


def _imported_rooms(path: Path) -> Iterator[str]:
    for name in _imported_modules(path):
        parts = name.split(".")
        if _settings_module(name) is None and _is_room(parts[1]):
            yield parts[1]


def _is_room(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def _edges() -> dict[str, dict[str, set[str]]]:
    """room -> imported room -> the files that import it."""
    edges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for room, path in _modules():
        for target in _imported_rooms(path):
            if target != room:
                edges[room][target].add(str(path.relative_to(PACKAGE)))
    return edges


def test_every_room_has_a_floor() -> None:
    floors = _floor_of()
    rooms = {room for room, _ in _modules()}
    unplaced = sorted(rooms - floors.keys())
    assert not unplaced, f"give these rooms a floor in FLOORS: {unplaced}"


def test_no_import_runs_up_a_floor() -> None:
    floors = _floor_of()
    upward = [
        f"{room} (floor {floors[room]}) imports {target} (floor {floors[target]}) in "
        f"{', '.join(sorted(files))}"
        for room, targets in _edges().items()
        for target, files in targets.items()
        if room in floors and target in floors and floors[target] > floors[room]
    ]
    assert not upward, "imports that run up a floor:\n" + "\n".join(sorted(upward))


def test_no_circle_between_rooms() -> None:
    edges = _edges()
    circles = _strongly_connected(edges)
    described = [
        " <-> ".join(sorted(component))
        + ": "
        + "; ".join(
            f"{a}->{b} ({', '.join(sorted(edges[a][b]))})"
            for a in sorted(component)
            for b in sorted(edges[a])
            if b in component
        )
        for component in circles
    ]
    assert not described, "rooms that import each other in a circle:\n" + "\n".join(described)


def _strongly_connected(edges: dict[str, dict[str, set[str]]]) -> list[set[str]]:
    """Tarjan's algorithm; only components of more than one room."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(room: str) -> None:
        index[room] = low[room] = len(index)
        stack.append(room)
        on_stack.add(room)
        for target in edges.get(room, {}):
            if target not in index:
                visit(target)
                low[room] = min(low[room], low[target])
            elif target in on_stack:
                low[room] = min(low[room], index[target])
        if low[room] == index[room]:
            component: set[str] = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == room:
                    break
            if len(component) > 1:
                found.append(component)

    for room in list(edges):
        if room not in index:
            visit(room)
    return found


@pytest.mark.parametrize(
    "path", [p for _, p in _modules()], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_modules_stay_small(path: Path) -> None:
    relative = str(path.relative_to(PACKAGE))
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if relative in LONG_MODULES:
        return
    assert lines <= MAX_LINES, (
        f"gateway/{relative} has {lines} lines (over {MAX_LINES}): split it by concern, or add "
        "it to LONG_MODULES with the reason it reads better whole"
    )


def test_settings_modules_stay_leaves() -> None:
    floors = _floor_of()
    settings = sorted(p for p in PACKAGE.rglob("config.py") if p.parent != PACKAGE)
    assert len(settings) >= 5  # imap, smtp, payout, web, revocation: the exemption sees them
    reaching = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in settings
        for name in _imported_modules(path)
        if _settings_module(name) is None
        and floors.get(name.split(".")[1], 99) > 0
        and not any(name == m or name.startswith(m + ".") for m in SETTINGS_MAY_IMPORT)
    ]
    assert not reaching, "settings modules must stay leaves:\n" + "\n".join(reaching)


def test_the_checks_can_fail() -> None:
    """The circle finder and the floor map see what they must (so a green run means something)."""
    assert _strongly_connected({"a": {"b": set()}, "b": {"a": set()}}) == [{"a", "b"}]
    assert _strongly_connected({"a": {"b": set()}, "b": {}}) == []
    floors = _floor_of()
    assert floors["errors"] < floors["store"] < floors["receipts"] < floors["pipeline"]
    assert "store" in _edges()["pipeline"]
    assert _settings_module("gateway.web.config.WebConfig") == "gateway.web.config"
    assert _settings_module("gateway.web.app") is None
    assert _settings_module("gateway.config") is None  # the core configuration is a room
