"""The hostile corpus as a benchmark: the worst time and the peak memory over every input.

    python -m bench.hostile_bench [--keep DIR]

Every case of ``tests/support/hostile_corpus`` (the file-system ones aside: they are the
spool's, and never reach the pipeline) is written to a file, read as the spool reads it (size
bounded before reading, ``gateway.inbox.reading``) and handled by the daemon's pipeline, with
partners for the signature cases. Per case: the wall time from reading the file to the
committed answer, and the process's peak resident set size after it.

The bounds (issue 12): every hostile input answered within 2 s and 300 MB of RSS on this 2-core
machine. The run fails (exit 1) if a case gets another answer than the one it names, or if a
bound is exceeded. Prints a table, then one ``BENCH_JSON {...}`` line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import own_peak_rss_mib, parser_for, print_bench_json, row, say, work_directory
from gateway.inbox.reading import read_bounded
from gateway.logs import configure_logging
from gateway.partners.registry import PartnerRegistry
from gateway.pipeline import Pipeline
from gateway.receipts.keys import generate_dev_credentials
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.security.xmldsig import Signer
from gateway.store import Store
from gateway.testing.cpa import write_cpa
from gateway.validation.catalog import SchemaCatalog
from tests.conftest import FIXED_NOW, IDENTITY
from tests.support.hostile import Case, answer
from tests.support.hostile_corpus import plain_cases, secured_cases
from tests.support.hostile_mime import expired_partner_cpa
from tests.support.pki import TestPki
from tests.test_pipeline_security import cpa_spec

MAX_SECONDS = 2.0
MAX_RSS_MIB = 300.0
MAX_BYTES = 10 * 1024 * 1024


def pipelines(directory: Path, pki: TestPki) -> tuple[Pipeline, Pipeline]:
    """One without partners (the embedded default), one with the corpus's CPAs and keys."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    generate_dev_credentials(key, cert, common_name="bench", organisation="bench")
    catalog = SchemaCatalog.default()
    plain = Pipeline(
        identity=IDENTITY,
        store=Store(directory / "plain.sqlite3"),
        catalog=catalog,
        signer=Signer.from_files(key, cert),
        engine=RuleEngine(RULES),
        max_message_bytes=MAX_BYTES,
        clock=lambda: FIXED_NOW,
    )
    partners = directory / "partners"
    partners.mkdir()
    write_cpa(partners, cpa_spec(pki))
    write_cpa(partners, expired_partner_cpa(pki), name="expired.xml")
    secured = Pipeline(
        identity=IDENTITY,
        store=Store(directory / "secured.sqlite3"),
        catalog=catalog,
        signer=pki.gateway.signer(),
        engine=RuleEngine(RULES),
        max_message_bytes=MAX_BYTES,
        clock=lambda: FIXED_NOW,
        partners=PartnerRegistry.load(partners),
        decryption_keys=[pki.gateway.decryption_key()],
    )
    return plain, secured


def cases(pki: TestPki) -> Iterator[Case]:
    yield from plain_cases()
    yield from secured_cases(pki)


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__name__, __doc__)
    parser.add_argument("--keep", help="keep the work directory here")
    args = parser.parse_args(argv)
    configure_logging("error", "console")  # thousands of rejections: only what goes wrong
    pki = TestPki.create(now=FIXED_NOW)
    with work_directory(args.keep, "hostile-bench-") as directory:
        plain, secured = pipelines(directory, pki)
        drop = directory / "drop"
        worst = (0.0, "")
        peak = (own_peak_rss_mib(), "start")
        wrong: list[str] = []
        times: list[float] = []
        for index, case in enumerate(cases(pki)):
            drop.write_bytes(case.data)
            pipeline = secured if case.secured else plain
            started = time.perf_counter()
            raw = read_bounded(drop, MAX_BYTES)
            result = pipeline.handle(
                raw, source="spool", source_ref=f"h{index}", source_name=f"{case.name}.msg"
            )
            if case.replay:
                result = pipeline.handle(
                    raw, source="spool", source_ref=f"h{index}b", source_name=case.name
                )
            seconds = time.perf_counter() - started
            replies = [r.body for r in pipeline.store.intake.replies_for(result.received_id)]
            got = answer(result, replies)
            if got != case.expect:
                wrong.append(f"{case.name}: expected {case.expect}, got {got}")
            times.append(seconds)
            worst = max(worst, (seconds, case.name))
            rss = own_peak_rss_mib()
            if rss > peak[0]:
                peak = (rss, case.name)
        plain.store.close()
        secured.store.close()
    times.sort()
    results = {
        "bench": "hostile",
        "cases": len(times),
        "wrong_answers": wrong,
        "worst_seconds": round(worst[0], 3),
        "worst_case": worst[1],
        "p50_ms": round(times[len(times) // 2] * 1000, 2),
        "p99_ms": round(times[int(len(times) * 0.99)] * 1000, 2),
        "peak_rss_mib": round(peak[0], 1),
        "peak_rss_case": peak[1],
        "bounds": {"seconds": MAX_SECONDS, "rss_mib": MAX_RSS_MIB},
    }
    say("hostile corpus through the pipeline (read as the spool reads)")
    print(row("cases", str(len(times))))
    print(row("wrong answers", str(len(wrong)), "; ".join(wrong[:5])))
    print(row("worst time", f"{worst[0]:.3f} s", worst[1]))
    print(row("p50 / p99", f"{results['p50_ms']} / {results['p99_ms']} ms"))
    print(row("peak RSS", f"{peak[0]:.0f} MiB", peak[1]))
    print_bench_json(results)
    ok = not wrong and worst[0] <= MAX_SECONDS and peak[0] <= MAX_RSS_MIB
    if not ok:
        print("hostile bench: a bound was exceeded or an answer was wrong", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
