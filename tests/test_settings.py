"""The one config reader (``gateway.settings``): types checked, every error naming file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigurationError
from gateway.settings import Table, load_toml, read_secret


def table(tmp_path: Path, data: dict[str, Any], where: str = "outbox.smtp") -> Table:
    return Table(data, base=tmp_path, where=where, source="gateway.toml")


def test_values_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    t = table(
        tmp_path,
        {
            "host": "  mail.example  ",
            "port": 25,
            "her": 79768,
            "ratio": 2,
            "on": False,
            "ca": "ca.pem",
            "dirs": ["a", "b"],
            "security": "tls",
        },
    )
    assert t.string("host") == "mail.example"
    assert t.string("missing", "fallback") == "fallback"
    assert t.opt_string("missing") is None
    assert t.integer("port", 1, low=1, high=65535) == 25
    assert t.digits("her") == "79768"
    assert t.opt_digits("missing") is None
    assert t.number("ratio", 1.0, positive=True) == 2.0
    assert isinstance(t.number("ratio", 1.0), float)
    assert t.boolean("on", True) is False
    assert t.existing_file("ca") == (tmp_path / "ca.pem").resolve()
    assert t.opt_path("missing") is None
    assert t.path("missing", "rel/x") == (tmp_path / "rel/x").resolve()
    assert t.strings("dirs") == ["a", "b"]
    assert t.strings("missing") == []
    assert t.choice("security", ("tls", "starttls", "none"), "starttls") == "tls"
    assert t.choice("missing", ("tls", "none"), "none") == "none"


@pytest.mark.parametrize(
    ("data", "read", "message"),
    [
        ({}, lambda t: t.string("host"), "gateway.toml: missing required key 'outbox.smtp.host'"),
        (
            {"host": " "},
            lambda t: t.string("host"),
            "gateway.toml: outbox.smtp.host must be a non-empty string, got ' '",
        ),
        (
            {"port": "25"},
            lambda t: t.integer("port", 25, low=1, high=65535),
            "outbox.smtp.port must be an integer from 1 to 65535, got '25'",
        ),
        (
            {"port": True},
            lambda t: t.integer("port", 25, low=1, high=65535),
            "outbox.smtp.port must be an integer from 1 to 65535, got True",
        ),
        ({"n": 0}, lambda t: t.integer("n", 3, low=1), "outbox.smtp.n must be a positive integer"),
        ({"n": 2.5}, lambda t: t.integer("n", 3, low=0), "must be an integer of at least 0"),
        ({"x": 0}, lambda t: t.number("x", 1.0, positive=True), "x must be a positive number"),
        (
            {"x": -1},
            lambda t: t.number("x", 1.0, positive=True, unit="seconds"),
            "must be a positive number of seconds",
        ),
        ({"x": 0.0}, lambda t: t.number("x", 1.0, low=0.1), "x must be a number of at least 0.1"),
        ({"x": "1"}, lambda t: t.number("x", 1.0, low=0), "x must be a number of at least 0"),
        ({"b": "yes"}, lambda t: t.boolean("b", True), "outbox.smtp.b must be true or false"),
        ({"d": "12a"}, lambda t: t.digits("d"), "outbox.smtp.d must be a string of digits"),
        ({"d": -5}, lambda t: t.digits("d"), "must be a string of digits, got -5"),
        (
            {"s": "ssl"},
            lambda t: t.choice("s", ("tls", "none"), "tls"),
            "outbox.smtp.s must be one of 'tls', 'none', got 'ssl'",
        ),
        ({"l": "a"}, lambda t: t.strings("l"), "outbox.smtp.l must be a list of strings"),
        ({"f": "nope.pem"}, lambda t: t.existing_file("f"), "outbox.smtp.f: no such file"),
        ({"sub": 3}, lambda t: t.table("sub"), "outbox.smtp.sub must be a table, got 3"),
        (
            {"list": {"a": 1}},
            lambda t: t.tables("list"),
            r"outbox.smtp.list must be an array of tables ([[outbox.smtp.list]])",
        ),
        ({"list": [{}, 3]}, lambda t: t.tables("list"), "outbox.smtp.list[1] must be a table"),
        (
            {"host": "h", "prot": 1, "colour": 2},
            lambda t: t.only({"host", "port"}),
            "unknown key(s) outbox.smtp.colour, outbox.smtp.prot (known: host, port)",
        ),
        (
            {"password": "hunter2"},
            lambda t: t.no_password(instead="use password_file"),
            "outbox.smtp.password: the password must not be in the config; use password_file",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(
    tmp_path: Path, data: dict[str, Any], read: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        read(table(tmp_path, data))
    assert message in str(caught.value)
    assert str(caught.value).startswith("gateway.toml: ")
    assert "hunter2" not in str(caught.value)


def test_nested_tables_carry_their_key_path(tmp_path: Path) -> None:
    root = Table(
        {"imap": {"mailboxes": [{"name": "claims"}, {"name": "other", "port": "x"}]}},
        base=tmp_path,
        source="gateway.toml",
    )
    first, second = root.table("imap").tables("mailboxes")
    assert first.key("host") == "imap.mailboxes[0].host"
    named = second.named(repr("other"))
    with pytest.raises(ConfigurationError, match=r"imap\.mailboxes\[1\]\['other'\]\.port must be"):
        named.integer("port", 993, low=1, high=65535)
    assert root.table("absent").data == {} and "host" not in root.table("absent")
    assert root.table("absent").key("x") == "absent.x"


def test_load_toml(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[spool]\ndirectory = "var/spool"\n', encoding="utf-8")
    root = load_toml(path)
    assert root.source == str(path.resolve()) and root.base == path.resolve().parent
    assert root.table("spool").path("directory") == (tmp_path / "var/spool").resolve()
    path.write_text("[spool\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_toml(path)
    with pytest.raises(ConfigurationError, match="config file not found"):
        load_toml(tmp_path / "nope.toml")


def test_read_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret with spaces \r\n", encoding="utf-8")
    assert read_secret(secret_file, None, what="x") == "s3cret with spaces "
    monkeypatch.setenv("GATEWAY_TEST_SECRET", "from-env")
    assert read_secret(None, "GATEWAY_TEST_SECRET", what="x") == "from-env"
    monkeypatch.delenv("GATEWAY_TEST_SECRET")
    with pytest.raises(ConfigurationError, match="x: environment variable GATEWAY_TEST_SECRET"):
        read_secret(None, "GATEWAY_TEST_SECRET", what="x")
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="is empty or unset"):
        read_secret(tmp_path / "empty", None, what="x")
    with pytest.raises(ConfigurationError, match="x: cannot read password_file"):
        read_secret(tmp_path / "missing", None, what="x")
