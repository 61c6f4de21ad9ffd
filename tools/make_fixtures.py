"""Write the fixtures corpus: good and bad claim messages, sequences and README samples.

Run ``.venv/bin/python tools/make_fixtures.py`` from the project root. Everything under
``fixtures/good``, ``fixtures/bad``, ``fixtures/sequences`` and ``fixtures/samples`` and the file
``fixtures/README.md`` is deleted and written again from fixed seeds, fixed timestamps and fixed
ids: a re-run gives byte-identical files (``tests/test_corpus.py`` checks that).

Every file is named after what the pipeline must answer (see ``fixtures/README.md``):

- ``good/<practitioner>-<n>bills[-variant].<ext>``: AppRec status 1;
- ``bad/<expect>--<description>.<ext>``: ``<expect>`` is ``apprec-<status>-<code>`` or
  ``ebxml-<errorCode>``;
- ``sequences/<name>/NN-<step>.<ext>`` with ``expect.toml``: messages run in order on one store.

Patients have synthetic national identity numbers only (``make_fnr``, Tenor month + 80).

The corpus itself is built in ``tools/fixture_corpus/`` (building blocks, the good claims, the
table of bad ones and their mutations, the sequences); this script assembles and writes it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
# Run as a script, tools/ is on sys.path already; loaded from its file (tests/test_corpus.py), not.
if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))

from fixture_corpus.bad import bad_fixtures  # noqa: E402
from fixture_corpus.building import Fixture, SequenceSpec  # noqa: E402
from fixture_corpus.good import good_fixtures  # noqa: E402
from fixture_corpus.sequences import sequences  # noqa: E402

PROJECT_ROOT = TOOLS_DIR.parent
FIXTURES_DIR = PROJECT_ROOT / "fixtures"
GENERATED_DIRS = ("good", "bad", "sequences", "samples")

# --- samples, README, writing ---------------------------------------------------------------------

#: Sample name -> corpus file it copies (for ``make run``'s first spool).
SAMPLES: dict[str, str] = {
    "tannlege-3-regninger.msg": "good/tannlege-3bills.msg",
    "lege-5-regninger.msg": "good/lege-5bills.msg",
    "feil-skjema-mangler-guid.msg": "bad/apprec-2-T02--missing-guid.msg",
    "feil-dato-frem-i-tid.msg": "bad/apprec-3-766--one-of-four-bills-in-future.msg",
    "feil-sumkrav.msg": "bad/apprec-2-SUMKRAV--sumkravsamlet-100-too-high.msg",
}


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def expect_toml(sequence: SequenceSpec) -> str:
    lines = [
        "# Written by tools/make_fixtures.py; run the steps in order on one store.",
        f"description = {_toml_string(sequence.description)}",
    ]
    for step in sequence.steps:
        lines += ["", "[[steps]]", f"file = {_toml_string(step.file)}"]
        lines.append(f"outcome = {_toml_string(step.outcome)}")
        if step.apprec_status is not None:
            lines.append(f"apprec_status = {step.apprec_status}")
        if step.codes:
            lines.append(f"codes = [{', '.join(_toml_string(c) for c in step.codes)}]")
        if step.ot:
            lines.append(f"ot = [{', '.join(_toml_string(o) for o in step.ot)}]")
        if step.ebxml_error is not None:
            lines.append(f"ebxml_error = {_toml_string(step.ebxml_error)}")
        lines.append(f"acknowledgment = {'true' if step.acknowledgment else 'false'}")
        if step.same_replies_as is not None:
            lines.append(f"same_replies_as = {_toml_string(step.same_replies_as)}")
        if step.same_apprec_as is not None:
            lines.append(f"same_apprec_as = {_toml_string(step.same_apprec_as)}")
        if step.known_bug is not None:
            lines.append(f"known_bug = {_toml_string(step.known_bug)}")
    return "\n".join(lines) + "\n"


_README_HEAD = """\
# Fixtures: a corpus of good and bad claim messages

Written by `tools/make_fixtures.py` from fixed seeds, timestamps and ids; do not edit by hand.
Regenerate (a re-run gives byte-identical files) with:

```sh
.venv/bin/python tools/make_fixtures.py
```

`tests/test_corpus.py` runs every file through the pipeline, with the clock at
2026-11-23 12:00 UTC (13:00 in Oslo) and a fresh store per file (one store per sequence), and
checks exactly the outcome its name promises: the AppRec status and error code (the per-bill
error's `OT` naming the offending bill's RegningNr), or the ebXML `MessageError` errorCode; that
every AppRec's signature verifies and validates against the project schemas; and that the
original bytes are kept in the store. It also regenerates the corpus into a temporary directory
and compares it with these files.

All patients have synthetic fødselsnummer (Tenor convention: month + 80). Treatment dates are in
September to November 2026; the ebXML timestamps are 2026-11-20.

## Naming

- `good/<practitioner>-<n>bills[-variant].<ext>`: `<practitioner>` is `tannlege`, `lege`,
  `psykolog` or `lab` (NLK analysis codes). Expected: AppRec status 1, and an ebXML
  `Acknowledgment` when the message asks for one (all `.msg` except `-noack`).
- `bad/<expect>--<description>.<ext>`, where `<expect>` is
  - `apprec-<status>-<code>`: an AppRec with `Status V=<status>` and `<code>` among its
    `Error V` values (`T01`, `T02`, `T10`, `E21` from KITH 8221; rule codes `SUMKRAV`,
    `ANTALLREGNINGER`, `766`, `DUPLIKAT`, `KREDITERING`), or
  - `ebxml-<errorCode>`: an ebXML `MessageError` with that `eb:errorCode` (`MimeProblem`,
    `OtherXml`, `ValueNotRecognized`, `Inconsistent`, `NotSupported`) and no AppRec.
- `<ext>`: `.msg` is an ebXML MIME message (answered with `.eml` replies); `.xml` is a bare
  MsgHead (answered with a bare signed AppRec `.xml`). The pipeline does not look at the
  extension: a file that does not start with `<` is taken for MIME.
- `sequences/<name>/NN-<step>.<ext>`: messages run in order on one store; `expect.toml` gives
  each step's `outcome` (`accepted`, `partially_accepted`, `rejected`, `duplicate`,
  `ebxml_error`), `apprec_status`, `codes`, `ot` (RegningNr of the rejected bills),
  `ebxml_error`, `acknowledgment`, and for duplicates `same_replies_as` (all replies
  byte-identical to that step's) or `same_apprec_as` (the AppRec byte-identical).
- `samples/`: plain-named copies for the README quick start (`make run` drops them into the
  spool).
"""


def readme(good: Sequence[Fixture], bad: Sequence[Fixture], seqs: Sequence[SequenceSpec]) -> str:
    lines = [_README_HEAD, "## Good fixtures", "", "| file | what |", "|---|---|"]
    lines += [f"| `{Path(f.path).name}` | {f.description} |" for f in good]
    lines += ["", "## Bad fixtures", "", "| file | expected | what it tests |", "|---|---|---|"]
    for f in bad:
        name = Path(f.path).name
        expect = name.split("--", 1)[0]
        lines.append(f"| `{name}` | `{expect}` | {f.description} |")
    lines += ["", "## Sequences", "", "| sequence | steps | what |", "|---|---|---|"]
    for s in seqs:
        steps = "; ".join(
            f"`{step.file}` → {step.outcome}"
            + (f" {step.apprec_status}" if step.apprec_status is not None else "")
            + (f" {'/'.join(step.codes)}" if step.codes else "")
            + (f" {step.ebxml_error}" if step.ebxml_error else "")
            + (" (**known bug**, xfail)" if step.known_bug else "")
            for step in s.steps
        )
        lines.append(f"| `{s.name}` | {steps} | {s.description} |")
    bugs = [(s.name, step) for s in seqs for step in s.steps if step.known_bug]
    if bugs:
        lines += ["", "Known pipeline bugs (the step is an expected failure until fixed):", ""]
        lines += [f"- `{name}/{step.file}`: {step.known_bug}." for name, step in bugs]
    lines += ["", "## Samples", "", "| file | copy of |", "|---|---|"]
    lines += [f"| `{name}` | `{source}` |" for name, source in SAMPLES.items()]
    return "\n".join(lines) + "\n"


def corpus() -> dict[str, bytes]:
    """Every generated file, by path relative to ``fixtures/``."""
    good, bad, seqs = good_fixtures(), bad_fixtures(), sequences()
    files: dict[str, bytes] = {}
    for fixture in (*good, *bad):
        if fixture.path in files:
            raise ValueError(f"duplicate fixture {fixture.path}")
        files[fixture.path] = fixture.data
    for s in seqs:
        for step in s.steps:
            files[f"sequences/{s.name}/{step.file}"] = step.data
        files[f"sequences/{s.name}/expect.toml"] = expect_toml(s).encode("utf-8")
    for name, source in SAMPLES.items():
        files[f"samples/{name}"] = files[source]
    files["README.md"] = readme(good, bad, seqs).encode("utf-8")
    return files


def write(directory: Path) -> int:
    """Replace the generated part of ``directory`` with the corpus; return the file count."""
    files = corpus()
    directory.mkdir(parents=True, exist_ok=True)
    for sub in GENERATED_DIRS:
        shutil.rmtree(directory / sub, ignore_errors=True)
    for relative, data in sorted(files.items()):
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return len(files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=FIXTURES_DIR, help="directory to write (default: fixtures/)"
    )
    args = parser.parse_args(argv)
    count = write(args.out)
    print(f"wrote {count} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
