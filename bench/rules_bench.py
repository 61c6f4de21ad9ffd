"""How the rule engine's cost per bill grows with the size of the rule set.

    python -m bench.rules_bench [--claims N] [--bills B]

Generates rule sets of 20 and 2,000 rules shaped like KUHR's: a fixed handful apply to every
bill, all others concern one practitioner type and a few takst/NLK codes. It evaluates the same
generated claims against each and prints the cost per bill and the ratio (the engine's target:
2,000 rules cost at most about 2x what 20 do). It also runs an unindexed engine (every rule on
every bill) to show what the index saves. Prints a ``BENCH_JSON`` line for machines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime

from gateway.claims.model import BehandlerKrav, Enkeltregning, MsgHead
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.engine import RuleEngine
from gateway.testing.claims import default_receiver, default_sender, make_claim
from gateway.testing.history import MemoryHistory

PRACTITIONERS = ("tannlege", "lege", "psykolog", "lab")


def _check_factory(limit: int) -> object:
    # A typical small check: look at the bill's lines, compare with a number.
    def check(bill: Enkeltregning, _index: int, _ctx: ClaimContext) -> Facts | None:
        total = sum(t.antall for t in bill.behandling.takster)
        return {"antall": str(total)} if total > limit else None

    return check


GENERAL_RULES = 10


def make_rules(count: int, codes: Sequence[str], rng: random.Random) -> list[Rule]:
    """``count`` rules: ``GENERAL_RULES`` that run on every bill (sums, dates, duplicates: a
    fixed handful that does not grow with the tariff), the rest tied to one practitioner type
    and 1-3 takst/NLK codes, as most of KUHR's ~2,000 rules are."""
    rules: list[Rule] = []
    for i in range(count):
        general = i < GENERAL_RULES
        rules.append(
            Rule(
                id=f"GEN-{i:05d}",
                version=1,
                code=f"G{i}",
                text="generert regel {antall}",
                severity=Severity.WARNING,
                scope=Scope.BILL,
                valid_from=date(2000, 1, 1),
                valid_to=None,
                check=_check_factory(1000),  # type: ignore[arg-type]
                practitioners=None if general else frozenset({rng.choice(PRACTITIONERS)}),
                codes=None if general else frozenset(rng.sample(list(codes), rng.randint(1, 3))),
            )
        )
    return rules


class _Unindexed(RuleEngine):
    """Every rule on every bill: what dispatch would cost without the index."""

    def rules_for(self, bill: Enkeltregning, practitioner: str | None) -> list[Rule]:
        return [r for r in self.rules if r.scope is Scope.BILL]


def _claims(count: int, bills: int) -> list[tuple[str, MsgHead, BehandlerKrav]]:
    claims = []
    for i in range(count):
        practitioner = PRACTITIONERS[i % len(PRACTITIONERS)]
        head, krav = make_claim(
            rng=random.Random(i),
            practitioner=practitioner,  # type: ignore[arg-type]
            bills=bills,
            sender=default_sender(),
            receiver=default_receiver(),
            start=datetime(2026, 9, 1, 8, 0),
        )
        claims.append((practitioner, head, krav))
    return claims


def _cost_per_bill(
    engine: RuleEngine, claims: list[tuple[str, MsgHead, BehandlerKrav]], rounds: int
) -> float:
    history = MemoryHistory()  # empty: the cost measured is the engine's, not the store's
    contexts = [
        ClaimContext(
            head=head,
            krav=krav,
            sender_her="8141253",
            received_at=datetime(2026, 11, 23, 12, 0),
            history=history,
            practitioner=practitioner,
            practitioner_id="8141253",
        )
        for practitioner, head, krav in claims
    ]
    bills = sum(len(c.krav.regninger) for c in contexts)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for ctx in contexts:
            engine.evaluate(ctx)
        best = min(best, time.perf_counter() - started)
    return best / bills


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=int(os.environ.get("BENCH_CLAIMS", 200)))
    parser.add_argument("--bills", type=int, default=int(os.environ.get("BENCH_BILLS", 5)))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    claims = _claims(args.claims, args.bills)
    codes = sorted(
        {t.kode.lower() for _, _, k in claims for b in k.regninger for t in b.behandling.takster}
    )
    # Pad the code pool so most of the 2,000 rules concern codes these bills do not carry,
    # as most of KUHR's rules concern takster a given bill does not have.
    pool = codes + [f"x{i:04d}" for i in range(1500)]
    rng = random.Random(7)
    small = RuleEngine(make_rules(20, pool, rng))
    large = RuleEngine(make_rules(2000, pool, random.Random(7)))
    unindexed = _Unindexed(make_rules(2000, pool, random.Random(7)))

    print(f"rule engine: {args.claims} claims x {args.bills} bills", file=sys.stderr)
    per_bill = {
        "20": _cost_per_bill(small, claims, args.rounds),
        "2000": _cost_per_bill(large, claims, args.rounds),
        "2000_unindexed": _cost_per_bill(unindexed, claims, max(1, args.rounds // 2)),
    }
    ratio = per_bill["2000"] / per_bill["20"]
    print("rule engine cost per bill (best of rounds)")
    print(f"  20 rules                       {per_bill['20'] * 1e6:9.1f} µs")
    print(f"  2,000 rules (indexed)          {per_bill['2000'] * 1e6:9.1f} µs")
    print(f"  2,000 rules (every rule runs)  {per_bill['2000_unindexed'] * 1e6:9.1f} µs")
    print(f"  ratio 2,000 / 20 (indexed)     {ratio:9.2f}x   target <= ~2x")
    print(
        "BENCH_JSON "
        + json.dumps(
            {
                "bench": "rules",
                "claims": args.claims,
                "bills_per_claim": args.bills,
                "us_per_bill": {k: round(v * 1e6, 2) for k, v in per_bill.items()},
                "ratio_2000_over_20": round(ratio, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
