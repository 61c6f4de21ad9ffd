"""A table's cells and every marginal total, computed from the statistics facts with numpy.

``aggregate_facts(facts, register, dims, period)`` gives an ``Aggregate`` per cell that has at
least one counted bill, for the interior and for every subset of ``dims`` summed out (down to the
grand total).

**Sums** (kontakter, refusjon, takster) come from one ``bincount`` over the full key into a dense
cube; every total is that cube summed over the dimensions left out, so a total is always the sum
of its cells.

**Persons** (distinct patients) are not additive in general: one patient seen by a fastlege and a
physiotherapist is one person in the total. They are additive over the *patient dimensions*,
those every row of one patient shares (residence kommune, fylke, land, and sex, which come from
the patient): summed over those, each patient is counted in exactly one cell. So the distinct
counts are computed only for the sets that keep all patient dimensions, one per subset of the
other (*contact*) dimensions, by sorting (patient, key) pairs and counting each pair once; every
other total is a sum of those. A table of patient dimensions only needs one such count.

When the 90+ exclusion is in force (``Exclusion``), the excluded rows move to a pseudo
municipality per excluded kommune (``EXCLUDED_PREFIX`` + number): the kommune of a person can then
differ between their rows, so it counts as a contact dimension for that table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gateway.stats.contact_types import BY_PRACTICE_TYPE, OTHER
from gateway.stats.facts import Array
from gateway.stats.mirror import Facts
from gateway.stats.model import TOTAL
from gateway.stats.periods import Period, StatsError
from gateway.stats.query import UNKNOWN, Aggregate
from gateway.stats.reference import AGE_GROUP_BOUNDS
from gateway.stats.register import Register

__all__ = ["EXCLUDED_PREFIX", "PATIENT_DIMENSIONS", "Exclusion", "aggregate_facts"]

#: Dimensions every row of one patient shares.
PATIENT_DIMENSIONS = frozenset({"kommune", "fylke", "land", "kjonn"})
#: The kommune key of rows excluded at municipality level (``unntatt:0941``).
EXCLUDED_PREFIX = "unntatt:"

_EPOCH_YEAR = 1970
_AGE_LOWS = np.array([low for _label, low, _high in AGE_GROUP_BOUNDS[1:]], dtype=np.int64)
_AGE_LABELS = [label for label, _low, _high in AGE_GROUP_BOUNDS]
_SEX_LABELS = [UNKNOWN, "K", "M"]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Persons in ``age_group`` are left out of these municipalities' cells (and counted in the
    totals of larger areas)."""

    kommuner: frozenset[str]
    age_group: str = "90+"


@dataclass
class _Rows:
    """The counted bills of one period, and their dimension values (computed once each)."""

    facts: Facts
    register: Register
    index: Array
    _cache: dict[str, tuple[Array, list[str]]] = field(default_factory=dict)
    _period_of: Array | None = None

    def column(self, name: str) -> Array:
        return self.facts.columns[name][self.index]

    def keep(self, mask: Array) -> None:
        self.index = self.index[mask]
        self._cache = {k: (codes[mask], labels) for k, (codes, labels) in self._cache.items()}
        if self._period_of is not None:
            self._period_of = self._period_of[mask]

    def period_of(self) -> Array:
        if self._period_of is None:
            self._period_of = self.register.period_of(self.column("sender"), self.column("day"))
        return self._period_of

    def dimension(self, name: str) -> tuple[Array, list[str]]:
        """Codes (0..n-1) per row and their labels."""
        if name not in self._cache:
            self._cache[name] = _DIMENSIONS[name](self)
        return self._cache[name]


def _compact(values: Array, labels: Sequence[str]) -> tuple[Array, list[str]]:
    """Codes renumbered to the distinct labels in use (equal labels merge), sorted, "ukjent"
    last: small dense cubes."""
    used = np.unique(values)
    names = sorted({labels[int(u)] for u in used}, key=lambda v: (v == UNKNOWN, v))
    position = {name: i for i, name in enumerate(names)}
    remap = np.zeros(len(labels), dtype=np.int64)
    for u in used:
        remap[int(u)] = position[labels[int(u)]]
    return remap[values], names


def _from_labels(per_row: Sequence[str]) -> tuple[Array, list[str]]:
    labels = sorted(set(per_row), key=lambda v: (v == UNKNOWN, v))
    lookup = {v: i for i, v in enumerate(labels)}
    return np.array([lookup[v] for v in per_row], dtype=np.int64), labels


def _by_register(
    rows: _Rows, pick: Callable[[Register, int], str | None], fallback: str
) -> tuple[Array, list[str]]:
    """A register attribute per row. Without a register period (or the attribute), the claim's
    practitioner type when ``fallback`` is "ptype", else ``fallback``."""
    reg = rows.register
    from_register = [pick(reg, i) for i in range(len(reg.practice_type))]
    ptypes = [p or UNKNOWN for p in rows.facts.ptypes.values]
    labels = [v or UNKNOWN for v in from_register] + ptypes + [fallback]
    if fallback == "ptype":
        otherwise = len(from_register) + rows.column("ptype").astype(np.int64)
    else:
        otherwise = np.full(len(rows.index), len(labels) - 1, dtype=np.int64)
    period = rows.period_of()
    has = np.array([v is not None and v != "" for v in from_register] + [False], dtype=bool)
    use = (period >= 0) & has[np.where(period >= 0, period, len(from_register))]
    return _compact(np.where(use, period, otherwise), labels)


def _praksistype(rows: _Rows) -> tuple[Array, list[str]]:
    return _by_register(rows, lambda r, i: r.practice_type[i], "ptype")


def _fagomrade(rows: _Rows) -> tuple[Array, list[str]]:
    return _by_register(rows, lambda r, i: r.fagomrade[i], "ptype")


def _praksiskommune(rows: _Rows) -> tuple[Array, list[str]]:
    return _by_register(rows, lambda r, i: r.kommune[i], UNKNOWN)


def _driftsavtale(rows: _Rows) -> tuple[Array, list[str]]:
    period = rows.period_of()
    safe = np.maximum(period, 0)
    day = rows.column("day").astype(np.int64)
    reg = rows.register
    if len(reg.starts):
        covered = (reg.agreement_to[safe] >= 0) & (reg.agreement_from[safe] <= day)
        covered &= day <= reg.agreement_to[safe]
    else:
        covered = np.zeros(len(period), dtype=bool)
    codes = np.where(period < 0, 2, np.where(covered, 0, 1))
    return _compact(codes, ["ja", "nei", UNKNOWN])


def _kontakttype(rows: _Rows) -> tuple[Array, list[str]]:
    kind = rows.facts.classification
    by_rank = [OTHER] + [kind.type_of_rank(r) for r in range(1, len(kind.rows) + 1)]
    labels = sorted({*by_rank, *BY_PRACTICE_TYPE, OTHER})
    lookup = {v: i for i, v in enumerate(labels)}
    codes = np.array([lookup[v] for v in by_rank], dtype=np.int64)[rows.column("ktype")]
    ptype_codes, ptype_labels = rows.dimension("praksistype")
    for name in BY_PRACTICE_TYPE:
        if name in ptype_labels:
            seen = (ptype_codes == ptype_labels.index(name)) & (rows.column("ktype") == 0)
            codes = np.where(seen, lookup[name], codes)
    return _compact(codes, labels)


def _residence(rows: _Rows) -> Array:
    return rows.facts.residence[rows.column("pid")].astype(np.int64)


def _kommune(rows: _Rows) -> tuple[Array, list[str]]:
    values = _residence(rows)
    labels = [*rows.facts.kommuner.values, UNKNOWN]
    return _compact(np.where(values < 0, len(labels) - 1, values), labels)


def _fylke(rows: _Rows) -> tuple[Array, list[str]]:
    fylker = sorted({k[:2] for k in rows.facts.kommuner.values})
    of_kommune = [fylker.index(k[:2]) for k in rows.facts.kommuner.values]
    values = _residence(rows)
    table = np.array([*of_kommune, len(fylker)], dtype=np.int64)
    return _compact(table[np.where(values < 0, len(of_kommune), values)], [*fylker, UNKNOWN])


def _land(rows: _Rows) -> tuple[Array, list[str]]:
    return _compact(np.where(_residence(rows) < 0, 1, 0), ["Norge", UNKNOWN])


def _age(rows: _Rows) -> Array:
    days = rows.column("day").astype("datetime64[D]")
    year = days.astype("datetime64[Y]").astype(np.int64) + _EPOCH_YEAR
    birth = rows.column("birth_year").astype(np.int64)
    age = year - birth - (rows.column("t_md") < rows.column("birth_md"))
    return np.where(birth == 0, -1, age)


def _aldersgruppe(rows: _Rows) -> tuple[Array, list[str]]:
    age = _age(rows)
    group = np.searchsorted(_AGE_LOWS, age, side="right")
    return _compact(np.where(age < 0, len(_AGE_LABELS), group), [*_AGE_LABELS, UNKNOWN])


def _kjonn(rows: _Rows) -> tuple[Array, list[str]]:
    return _compact(rows.column("sex").astype(np.int64), _SEX_LABELS)


_DIMENSIONS: dict[str, Callable[[_Rows], tuple[Array, list[str]]]] = {
    "fagomrade": _fagomrade,
    "praksistype": _praksistype,
    "praksiskommune": _praksiskommune,
    "driftsavtale": _driftsavtale,
    "kontakttype": _kontakttype,
    "kommune": _kommune,
    "fylke": _fylke,
    "land": _land,
    "aldersgruppe": _aldersgruppe,
    "kjonn": _kjonn,
}

#: Every dimension the cube knows.
CUBE_DIMENSIONS = tuple(_DIMENSIONS)


def _exclude(rows: _Rows, exclusion: Exclusion) -> bool:
    """Move the excluded rows to pseudo municipalities; True if any row moved."""
    codes, labels = rows.dimension("kommune")
    ages, age_labels = rows.dimension("aldersgruppe")
    if exclusion.age_group not in age_labels:
        return False
    old = [labels.index(k) for k in sorted(exclusion.kommuner) if k in labels]
    if not old:
        return False
    moved = np.isin(codes, old) & (ages == age_labels.index(exclusion.age_group))
    if not moved.any():
        return False
    pseudo = {code: len(labels) + n for n, code in enumerate(old)}
    new_labels = labels + [EXCLUDED_PREFIX + labels[code] for code in old]
    lookup = np.arange(len(labels), dtype=np.int64)
    target = lookup.copy()
    for code, new in pseudo.items():
        target[code] = new
    rows._cache["kommune"] = (np.where(moved, target[codes], codes), new_labels)
    return True


def aggregate_facts(
    facts: Facts,
    register: Register,
    dims: Sequence[str],
    period: Period,
    *,
    only: Mapping[str, Collection[str]] | None = None,
    exclusion: Exclusion | None = None,
) -> list[Aggregate]:
    """Every cell with a counted bill, interior and totals, for ``period`` (see the module)."""
    unknown = [d for d in [*dims, *(only or {})] if d not in _DIMENSIONS]
    if unknown:
        raise StatsError(f"unknown dimension(s) {', '.join(unknown)}")
    first = (period.start.toordinal() - 719163, period.end.toordinal() - 719163)
    day = facts.columns["day"]
    selected = facts.columns["counted"] & (day >= first[0]) & (day < first[1])
    rows = _Rows(facts, register, np.flatnonzero(selected))
    for name, values in (only or {}).items():
        codes, labels = rows.dimension(name)
        wanted = [i for i, label in enumerate(labels) if label in set(values)]
        rows.keep(np.isin(codes, wanted))
    moved = exclusion is not None and "kommune" in dims and _exclude(rows, exclusion)
    patient = {d for d in dims if d in PATIENT_DIMENSIONS and not (moved and d == "kommune")}
    return _cube(rows, list(dims), patient)


def _cube(rows: _Rows, dims: list[str], patient: set[str]) -> list[Aggregate]:
    n = len(dims)
    pairs = [rows.dimension(d) for d in dims]
    shape = tuple(max(1, len(labels)) for _codes, labels in pairs)
    size = int(np.prod(shape, dtype=np.int64))
    if len(rows.index) == 0:  # the grand total is always there
        return [Aggregate((TOTAL,) * n, 0, 0, 0, 0)]
    full = (
        np.ravel_multi_index(tuple(codes for codes, _ in pairs), shape)
        if n
        else np.zeros(len(rows.index), dtype=np.int64)
    )
    kontakter = np.bincount(full, minlength=size).reshape(shape)
    ore_rows = rows.column("ore")
    if int(np.abs(ore_rows).sum()) >= 2**53:  # float64 bincount weights must stay exact
        raise StatsError("refusjon too large to sum exactly")
    ore = np.rint(np.bincount(full, weights=ore_rows, minlength=size)).astype(np.int64)
    takster = np.rint(np.bincount(full, weights=rows.column("takster"), minlength=size))
    takster = takster.astype(np.int64).reshape(shape)
    ore = ore.reshape(shape)
    pid = rows.column("pid").astype(np.int64)
    p_axes = [i for i, d in enumerate(dims) if d in patient]
    c_axes = [i for i, d in enumerate(dims) if d not in patient]
    persons_by: dict[tuple[int, ...], Array] = {}
    for size_c in range(len(c_axes), -1, -1):
        for kept_c in itertools.combinations(c_axes, size_c):
            axes = tuple(sorted([*p_axes, *kept_c]))
            codes = [pairs[i][0] for i in axes]
            persons_by[kept_c] = _distinct(pid, codes, [shape[i] for i in axes])
    cells: list[Aggregate] = []
    for size_s in range(n, -1, -1):
        for kept in itertools.combinations(range(n), size_s):
            dropped = tuple(i for i in range(n) if i not in kept)
            k = kontakter.sum(axis=dropped) if dropped else kontakter
            o = ore.sum(axis=dropped) if dropped else ore
            t = takster.sum(axis=dropped) if dropped else takster
            kept_c = tuple(i for i in kept if i in c_axes)
            base_axes = sorted([*p_axes, *kept_c])
            persons = persons_by[kept_c]
            drop_p = tuple(base_axes.index(i) for i in p_axes if i not in kept)
            p = persons.sum(axis=drop_p) if drop_p else persons
            k = np.asarray(k)
            for flat in np.flatnonzero(k):
                at = np.unravel_index(flat, k.shape) if k.ndim else ()
                key = [TOTAL] * n
                for axis, position in zip(kept, at, strict=True):
                    key[axis] = pairs[axis][1][int(position)]
                cells.append(
                    Aggregate(
                        tuple(key),
                        int(k.flat[flat]),
                        int(np.asarray(o).flat[flat]),
                        int(np.asarray(t).flat[flat]),
                        int(np.asarray(p).flat[flat]),
                    )
                )
    return cells


def _distinct(pid: Array, codes: list[Array], shape: list[int]) -> Array:
    """Distinct patients per cell of the cube over ``codes`` (each (patient, cell) once)."""
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if not codes:
        seen = np.zeros(int(pid.max()) + 1, dtype=bool)
        seen[pid] = True
        return np.array(int(seen.sum()))
    key = np.ravel_multi_index(tuple(codes), tuple(shape)).astype(np.int64)
    pairs = np.sort(pid * size + key)
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    return np.bincount(pairs[first] % size, minlength=size).reshape(shape)
