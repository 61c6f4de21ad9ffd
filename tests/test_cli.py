"""The command line: validate's verdicts and exit codes, config errors, keys."""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from gateway.cli import _parser, main
from gateway.config import Config
from gateway.errors import ConfigurationError
from gateway.settings import DEFAULT_CONFIG
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message


def claim_xml(bills: int = 2) -> bytes:
    head, krav = make_claim(
        rng=random.Random(5),
        practitioner="tannlege",
        bills=bills,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 1, 9, 0),
    )
    return msghead_with_bkm(head, krav)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    xml = claim_xml()
    paths = {
        "msghead": tmp_path / "claim.xml",
        "mime": tmp_path / "claim.msg",
        "invalid": tmp_path / "invalid.xml",
        "broken": tmp_path / "broken.xml",
        "mime_broken": tmp_path / "broken.msg",
    }
    paths["msghead"].write_bytes(xml)
    paths["mime"].write_bytes(ebxml_message(xml, rng=random.Random(1)))
    paths["invalid"].write_bytes(xml.replace(b"<Antall>", b"<Antall>x", 1))
    paths["broken"].write_bytes(xml[: len(xml) // 2])
    paths["mime_broken"].write_bytes(ebxml_message(xml, rng=random.Random(1))[:900])
    return paths


def test_validate_exit_codes(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(files["msghead"]), str(files["mime"])]) == 0
    out = capsys.readouterr().out
    assert "claim.xml: valid (msghead)" in out
    assert "claim.msg: valid (ebxml)" in out
    assert "2 bill(s)" in out
    assert main(["validate", str(files["invalid"])]) == 1
    out = capsys.readouterr().out
    assert "invalid" in out and "Antall" in out
    assert main(["validate", str(files["broken"])]) == 2
    assert main(["validate", str(files["mime_broken"])]) == 2
    assert main(["validate", str(files["msghead"]), str(files["broken"])]) == 2
    assert main(["validate", str(files["msghead"].with_name("missing.xml"))]) == 2


def test_validate_json(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", str(files["invalid"]), str(files["mime"])]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [r["verdict"] for r in report] == ["invalid", "valid"]
    problem = report[0]["documents"][0]["problems"][0]
    assert problem["line"] and "Antall" in problem["path"]
    assert report[1]["claim"]["bills"] == 2


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[identity]\nname = "x"\nher_id = "12a"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"identity\.her_id must be a string of digits"):
        Config.from_toml(path)
    path.write_text('[identity]\nname = "x"\nher_id = "1"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"missing required key 'spool\.directory'"):
        Config.from_toml(path)
    with pytest.raises(ConfigurationError, match="not found"):
        Config.from_toml(tmp_path / "nope.toml")


def test_shipped_config_loads_and_resolves_paths_next_to_it() -> None:
    project = Path(__file__).resolve().parents[1]
    config = Config.from_toml(project / "config" / "local.toml")
    assert config.identity.her_id == "79768"
    assert config.database.path == project / "var" / "gateway.sqlite3"
    assert config.spool.incoming == project / "var" / "spool" / "incoming"


def test_run_with_a_bad_config_exits_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == 78
    assert "configuration error" in capsys.readouterr().err


def test_keys_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    project = Path(__file__).resolve().parents[1]
    text = (project / "config" / "local.toml").read_text(encoding="utf-8")
    config = tmp_path / "local.toml"
    config.write_text(text.replace("../var/", "var/"), encoding="utf-8")
    assert main(["keys", "generate", "--config", str(config)]) == 0
    assert main(["keys", "generate", "--config", str(config)]) == 1
    assert main(["keys", "generate", "--config", str(config), "--if-missing"]) == 0
    assert (tmp_path / "var" / "keys" / "signing-cert.pem").exists()


def test_validate_refuses_a_gzip_bomb_by_the_pipelines_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The payload is unpacked by the pipeline's own bounded ``inflate``: 11 MiB unpacked is over
    the default 10 MiB, so the file is unusable, whatever little it weighs packed."""
    bomb = Path(__file__).resolve().parents[1] / "fixtures" / "bad" / "apprec-2-T01--gzip-bomb.msg"
    assert bomb.stat().st_size < 100_000
    assert main(["validate", str(bomb)]) == 2
    out = capsys.readouterr().out
    assert "unusable (ebxml)" in out
    assert "Utpakket nyttelast er større enn 10485760 byte" in out


def test_validate_applies_the_configured_message_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``--config``, ``validation.max_message_bytes`` bounds the unpacked payload exactly
    as in the daemon: at the payload's size it passes, a byte less it does not."""
    xml = claim_xml(bills=40)
    message = tmp_path / "claim.msg"
    message.write_bytes(ebxml_message(xml, rng=random.Random(2), compress=True))
    assert message.stat().st_size < len(xml)  # only the unpacked payload meets the bound
    project = Path(__file__).resolve().parents[1]
    text = (project / "config" / "local.toml").read_text(encoding="utf-8")

    def validate_with_bound(bound: int) -> int:
        config = tmp_path / f"bound-{bound}.toml"
        config.write_text(
            text.replace("max_message_bytes = 10485760", f"max_message_bytes = {bound}"),
            encoding="utf-8",
        )
        return main(["validate", "--config", str(config), str(message)])

    assert validate_with_bound(len(xml)) == 0
    assert validate_with_bound(len(xml) - 1) == 2
    assert f"Utpakket nyttelast er større enn {len(xml) - 1} byte" in capsys.readouterr().out


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command that runs (a parser without subcommands), with its words."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
    for action in subparsers:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*path, name))


def test_every_command_says_what_config_it_reads_and_its_default() -> None:
    commands = dict(_commands(_parser()))
    assert len(commands) > 30
    for words, parser in commands.items():
        (config,) = [a for a in parser._actions if "--config" in a.option_strings]
        assert config.help, words
        expected = "none" if words == ("validate",) else "config/local.toml"
        assert f"(default: {expected})" in config.help, (words, config.help)
        assert config.default == (None if words == ("validate",) else DEFAULT_CONFIG), words
