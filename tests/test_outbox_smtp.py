"""The SMTP outbox against a real aiosmtpd server (``tests.support.smtp_sink``).

Backoffs are made tiny so a server outage of half a second is a handful of retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.outbox.smtp import SmtpConfig, SmtpOutbox
from gateway.records import ReplyRecord
from gateway.store import Store
from tests.support.smtp_sink import SmtpSink

integration = pytest.mark.integration
PARTNERS = {"HER:8141253": "lege@example.test", "HER:90001": "lab@example.test"}


def resolve(recipient: str) -> str | None:
    if recipient.startswith("HER:"):
        return PARTNERS.get(recipient)
    return recipient


def mail(n: int, recipient: str = "HER:8141253") -> ReplyRecord:
    body = (
        f"From: gateway@kuhr.test\r\nTo: lege@example.test\r\nSubject: reply {n}\r\n"
        f"Message-ID: <msg-{n}@kuhr.test>\r\n\r\nbody {n}\r\n.leading dot\r\n"
    ).encode()
    return ReplyRecord(
        kind="apprec",
        recipient=recipient,
        filename=f"reply-{n}.eml",
        body=body,
        ebxml_message_id=f"msg-{n}@kuhr.test",
    )


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def config(sink: SmtpSink, **overrides: object) -> SmtpConfig:
    values: dict[str, object] = {
        "host": sink.host,
        "port": sink.port,
        "security": "none",
        "from_address": "gateway@kuhr.test",
        "backoff_base": 0.02,
        "backoff_max": 0.1,
        "poll_interval": 0.05,
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmtpConfig(**values)  # type: ignore[arg-type]


class Running:
    """An outbox running in the background until ``stop()``."""

    def __init__(self, outbox: SmtpOutbox) -> None:
        self.outbox = outbox
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(outbox.run(self.stopping))

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, timeout=10)


@pytest.fixture
async def running() -> AsyncIterator[list[Running]]:
    started: list[Running] = []
    yield started
    for r in started:
        if not r.task.done():
            await r.stop()


def start(running: list[Running], store: Store, cfg: SmtpConfig) -> Running:
    r = Running(SmtpOutbox(store, cfg, resolve))
    running.append(r)
    return r


async def until(condition: object, within: float = 10.0) -> None:
    assert callable(condition)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def states(store: Store) -> dict[str, int]:
    return store.outbox.summary().states


# --- delivery ----------------------------------------------------------------------------------


@integration
async def test_rows_are_delivered_over_one_reused_connection(
    store: Store, sink: SmtpSink, running: list[Running]
) -> None:
    ids = store.outbox.queue_replies(
        [mail(n) for n in range(30)] + [mail(99, "kontor@example.test")]
    )
    r = start(running, store, config(sink))
    got = await sink.wait_for_async(31)
    await until(lambda: states(store) == {"delivered": 31})
    assert {m.session for m in got} == {1}, "every message over the same session"
    assert r.outbox.connections_opened == 1
    assert got[0].mail_from == "gateway@kuhr.test"
    assert got[0].recipients == ("lege@example.test",)
    assert got[-1].recipients == ("kontor@example.test",)
    assert got[0].data == mail(0).body, "the stored bytes, exactly"
    sent = [store.outbox.reply(i) for i in ids]
    assert all(s is not None and s.sends == 1 and s.attempts == 0 for s in sent)


@integration
async def test_notify_wakes_the_sender_before_the_poll(
    store: Store, sink: SmtpSink, running: list[Running]
) -> None:
    start(running, store, config(sink, poll_interval=30.0))
    await asyncio.sleep(0.2)  # idle, waiting for a poll 30 s away
    store.outbox.queue_replies([mail(1)])
    running[0].outbox.notify()
    await sink.wait_for_async(1, within=2.0)
    # The intake commits in its worker thread and notifies from there.
    store.outbox.queue_replies([mail(2)])
    await asyncio.to_thread(running[0].outbox.notify)
    await sink.wait_for_async(2, within=2.0)


@integration
async def test_server_down_then_back_everything_delivered_once(
    store: Store, sink: SmtpSink, running: list[Running]
) -> None:
    store.outbox.queue_replies([mail(n) for n in range(10)])
    r = start(running, store, config(sink))
    await sink.wait_for_async(10)
    sink.stop()  # drops the reused connection too
    store.outbox.queue_replies([mail(n) for n in range(10, 40)])
    r.outbox.notify()
    await until(lambda: r.outbox.stats.pauses >= 3)
    waiting = store.outbox.list_replies(state="pending")
    assert len(waiting) == 30
    assert any(w.attempts >= 1 and w.last_error for w in waiting)
    assert r.outbox.paused or r.outbox.stats.pauses >= 3
    sink.start()
    await sink.wait_for_async(40)
    await until(lambda: states(store) == {"delivered": 40})
    subjects = sorted(m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for m in sink.messages)
    assert len(subjects) == len(set(subjects)) == 40, "none lost, none twice"
    assert r.outbox.connections_opened >= 2, "reconnected after the drop"


@integration
async def test_4xx_is_retried_without_a_dead_letter(
    store: Store, sink: SmtpSink, running: list[Running]
) -> None:
    sink.fail_with("451 4.3.0 Try again later", times=2)
    (a,) = store.outbox.queue_replies([mail(1)])
    start(running, store, config(sink))
    await sink.wait_for_async(1)
    await until(lambda: states(store) == {"delivered": 1})
    assert sink.failures_answered == 2
    row = store.outbox.reply(a)
    assert row is not None and row.sends == 1 and "451" in (row.last_error or "")


@integration
async def test_5xx_is_dead_until_requeued(
    store: Store, sink: SmtpSink, running: list[Running]
) -> None:
    sink.fail_with("554 5.7.1 Message rejected", times=1)
    a, _ = store.outbox.queue_replies([mail(1), mail(2)])
    r = start(running, store, config(sink))
    await until(lambda: states(store) == {"dead": 1, "delivered": 1})
    dead = store.outbox.dead_letters()
    assert [d.id for d in dead] == [a]
    assert "554" in (dead[0].last_error or "") and "rejected" in (dead[0].last_error or "")
    assert len(sink.messages) == 1
    assert store.outbox.requeue([a], by="test") == [a]
    r.outbox.notify()
    await sink.wait_for_async(2)
    await until(lambda: states(store) == {"delivered": 2})


@integration
async def test_unresolvable_recipient_is_dead_with_the_reason(
    store: Store, sink: SmtpSink, running: list[Running]
) -> None:
    a, _ = store.outbox.queue_replies([mail(1, "HER:404"), mail(2)])
    start(running, store, config(sink))
    await until(lambda: states(store) == {"dead": 1, "delivered": 1})
    row = store.outbox.reply(a)
    assert row is not None
    assert row.last_error == "no mail address for recipient 'HER:404' (not in any CPA)"


@integration
async def test_stop_mid_delivery_leaves_the_rest_pending_and_sends_nothing_twice(
    store: Store, sink: SmtpSink, running: list[Running]
) -> None:
    store.outbox.queue_replies([mail(n) for n in range(400)])
    r = start(running, store, config(sink, connections=2))
    await sink.wait_for_async(40)
    await r.stop()
    sent_first = len(sink.messages)
    assert sent_first < 400, "stopped before the end"
    assert states(store) == {"delivered": sent_first, "pending": 400 - sent_first}

    again = start(running, store, config(sink, connections=2))
    await sink.wait_for_async(400)
    await until(lambda: states(store) == {"delivered": 400})
    await again.stop()
    ids = [m.data.split(b"Message-ID: ")[1].split(b"\r\n")[0] for m in sink.messages]
    assert len(ids) == len(set(ids)) == 400
    assert {m.session for m in sink.messages} == {1, 2, 3, 4}, "two sessions per run"


@integration
async def test_auth_from_the_environment(
    store: Store, running: list[Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    with SmtpSink(users={"gateway": "s3cret"}) as sink:
        store.outbox.queue_replies([mail(1)])
        r = start(
            running, store, config(sink, user="gateway", password_env="TEST_SMTP_PASSWORD")
        )
        (got,) = await sink.wait_for_async(1)
        assert got.user == "gateway"
        await r.stop()
        # A wrong password is the config's fault, not the message's: pause, keep it pending.
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
        (b,) = store.outbox.queue_replies([mail(2)])
        r = start(
            running,
            store,
            config(sink, user="gateway", password_env="TEST_SMTP_PASSWORD", timeout=1.0),
        )
        await until(lambda: r.outbox.stats.pauses >= 1)
        row = store.outbox.reply(b)
        assert row is not None and row.state == "pending" and row.last_error
        assert r.outbox.stats.dead == 0 and len(sink.messages) == 1
        await r.stop()


@integration
async def test_starttls_with_a_private_ca(
    store: Store, running: list[Running], tmp_path: Path
) -> None:
    with SmtpSink(tls_dir=tmp_path / "tls") as sink:
        assert sink.cert_file is not None
        store.outbox.queue_replies([mail(1)])
        # Without STARTTLS the server refuses to take mail: never sent in the clear.
        plain = start(running, store, config(sink))
        await until(lambda: plain.outbox.stats.retried >= 1)
        await plain.stop()
        assert sink.messages == []
        tls = start(running, store, config(sink, security="starttls", ca_file=sink.cert_file))
        (got,) = await sink.wait_for_async(1)
        assert got.data == mail(1).body
        await tls.stop()  # QUIT before the server goes away


# --- configuration -------------------------------------------------------------------------------


def test_config_from_mapping_defaults_and_paths(tmp_path: Path) -> None:
    (tmp_path / "smtp.pw").write_text("pw\n")
    cfg = SmtpConfig.from_mapping(
        {
            "host": "smtp.example.test",
            "from_address": "gw@example.test",
            "user": "gw",
            "password_file": "smtp.pw",
            "connections": 4,
        },
        tmp_path,
    )
    assert (cfg.port, cfg.security, cfg.connections) == (587, "starttls", 4)
    assert cfg.password_file == tmp_path / "smtp.pw"
    assert cfg.password() == "pw"
    tls = SmtpConfig.from_mapping(
        {"host": "h", "from_address": "a@b", "security": "tls"}, tmp_path
    )
    assert tls.port == 465 and tls.password() is None


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"from_address": "a@b"}, "outbox.smtp.host"),
        ({"host": "h", "from_address": "a@b", "password": "x"}, "outbox.smtp.password"),
        ({"host": "h", "from_address": "a@b", "connections": 5}, "outbox.smtp.connections"),
        ({"host": "h", "from_address": "a@b", "security": "ssl"}, "outbox.smtp.security"),
        ({"host": "h", "from_address": "a@b", "user": "u"}, "outbox.smtp.user"),
        ({"host": "h", "from_address": "a@b", "prot": 25}, "outbox.smtp.prot"),
        ({"host": "h", "from_address": "nobody"}, "outbox.smtp.from_address"),
        (
            {"host": "h", "from_address": "a@b", "user": "u", "password_file": "missing"},
            "outbox.smtp.password_file",
        ),
    ],
)
def test_config_errors_name_the_key(data: dict[str, object], named: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        SmtpConfig.from_mapping(data, tmp_path)
