"""The CRL refresh service, the health report of the cache, the ``[revocation]`` config, the
issuers directory and the HTTP fetch: against a CRL distribution point on localhost."""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.errors import CertificateRevoked, ConfigurationError
from gateway.security.revocation import (
    CrlRefresher,
    Revocation,
    RevocationConfig,
    revocation_health,
)
from gateway.security.revocation.config import OcspResponder
from gateway.security.revocation.crl import CrlCache
from gateway.security.revocation.fetch import RevocationSourceError, http_get
from gateway.security.revocation.issuers import Issuers
from tests.revocation_pki import CRL_PATH, Issued, RevocationPki, RevocationServer

NOW = datetime.now(UTC)


@pytest.fixture
def server() -> Iterator[RevocationServer]:
    with RevocationServer() as running:
        yield running


@pytest.fixture
def pki(server: RevocationServer) -> RevocationPki:
    return RevocationPki.create(server.base_url, now=NOW)


@pytest.fixture
def partner(pki: RevocationPki) -> Issued:
    return pki.issue("Testlegen", key_name="revocation-partner")


def config_for(pki: RevocationPki, tmp_path: Path, **seconds: float) -> RevocationConfig:
    return RevocationConfig(
        cache_dir=tmp_path / "crl",
        issuers_dir=pki.write_issuers(tmp_path / "issuers"),
        timeout=5.0,
        refresh_interval=timedelta(seconds=seconds.get("refresh", 3600)),
        retry_interval=timedelta(seconds=seconds.get("retry", 300)),
    )


def crl_file(config: RevocationConfig) -> Path:
    (path,) = config.cache_dir.glob("*.crl")
    return path


async def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not come true in time")


# --- the refresh service -------------------------------------------------------------------------


def test_a_refresh_replaces_the_cached_crl_atomically(
    server: RevocationServer, pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path)
    revocation = Revocation.start(config, lambda: [partner.certificate])
    assert revocation.refresher.name == "revocation"
    server.serve_crl(pki.crl())
    asyncio.run(revocation.refresher.refresh())
    revocation.checker.check(partner.certificate, NOW)
    first = crl_file(config).stat()
    assert (crl_file(config).with_suffix(".url")).read_text() == pki.crl_url

    server.serve_crl(pki.crl(revoked=[partner], this_update=NOW))
    report = asyncio.run(revocation.refresher.refresh())
    assert report.fetched == (pki.crl_url,) and not report.failed
    second = crl_file(config).stat()
    assert second.st_ino != first.st_ino  # renamed over, not written in place
    assert sorted(p.suffix for p in config.cache_dir.iterdir()) == [".crl", ".url"]  # no temp
    with pytest.raises(CertificateRevoked):
        revocation.checker.check(partner.certificate, NOW)


async def test_the_service_survives_a_responder_that_is_down_keeps_the_crl_and_retries(
    server: RevocationServer, pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path, retry=0.05)
    cache = CrlCache(config.cache_dir, Issuers.load(config.issuers_dir))
    cache.store(pki.crl_url, pki.crl(), now=NOW)
    kept = crl_file(config).read_bytes()
    server.fail(CRL_PATH)
    refresher = CrlRefresher(config, cache, lambda: [partner.certificate])
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(refresher.run(stop))
        await eventually(lambda: server.hits.get(CRL_PATH, 0) >= 1)
        await asyncio.sleep(0.05)
        assert crl_file(config).read_bytes() == kept  # the old CRL stays
        assert not task.done()
        # The responder comes back; the service gets the new CRL on its own.
        server.serve_crl(pki.crl(revoked=[partner], this_update=NOW))
        await eventually(lambda: crl_file(config).read_bytes() != kept)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert crl_file(config).read_bytes() != kept
    failures = [e for e in logs if e["event"] == "crl_fetch_failed"]
    assert failures and "HTTP 503" in failures[0]["error"]
    assert failures[0]["kept_this_update"] is not None
    cached = cache.get(pki.crl_url)
    assert cached is not None and cached.revocation(partner.certificate) is not None


def test_a_cache_that_cannot_be_written_is_a_failed_round_not_a_crash(
    server: RevocationServer, pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path)
    config.cache_dir.write_text("a file where the directory should be")
    cache = CrlCache(config.cache_dir, Issuers.load(config.issuers_dir))
    server.serve_crl(pki.crl())
    report = asyncio.run(CrlRefresher(config, cache, lambda: [partner.certificate]).refresh())
    assert "the cache cannot be written" in report.failed[pki.crl_url]


def test_rounds_back_off_after_failures_and_come_early_for_a_next_update(
    pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path, refresh=3600, retry=60)
    cache = CrlCache(config.cache_dir, Issuers.load(config.issuers_dir))

    def down(url: str, **_: object) -> bytes:
        raise RevocationSourceError(f"{url}: connection refused")

    refresher = CrlRefresher(config, cache, lambda: [partner.certificate], fetch=down)
    delays = []
    for _ in range(8):
        asyncio.run(refresher.refresh())
        delays.append(refresher.next_delay().total_seconds())
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]

    served = pki.crl(this_update=NOW, next_update=NOW + timedelta(minutes=20))
    refresher = CrlRefresher(
        config,
        cache,
        lambda: [partner.certificate],
        fetch=lambda *_, **__: served,
        clock=lambda: NOW,
    )
    asyncio.run(refresher.refresh())
    assert timedelta(minutes=19) < refresher.next_delay() <= timedelta(minutes=20)


def test_certificates_of_an_untrusted_issuer_are_reported(
    server: RevocationServer, pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    stranger = RevocationPki.create(server.base_url, now=NOW, label="-stranger")
    foreign = stranger.issue("Fremmed", key_name="revocation-foreign")
    server.serve_crl(pki.crl())
    config = config_for(pki, tmp_path)
    cache = CrlCache(config.cache_dir, Issuers.load(config.issuers_dir))
    refresher = CrlRefresher(config, cache, lambda: [partner.certificate, foreign.certificate])
    with capture_logs() as logs:
        report = asyncio.run(refresher.refresh())
    assert report.fetched == (pki.crl_url,)
    assert len(report.unknown_issuers) == 1 and "Fremmed" in report.unknown_issuers[0]
    assert "revocation_issuer_unknown" in [e["event"] for e in logs]


# --- health --------------------------------------------------------------------------------------


def test_health_reports_each_crl_and_fails_on_a_stale_one(
    server: RevocationServer, pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path)
    assert revocation_health(config, NOW).status == "warn"  # nothing cached yet
    missing = revocation_health(config, NOW, [partner.certificate])
    assert missing.status == "fail" and "never fetched" in missing.detail

    server.serve_crl(pki.crl(this_update=NOW - timedelta(minutes=1)))
    asyncio.run(Revocation.start(config, lambda: [partner.certificate]).refresher.refresh())
    fresh = revocation_health(
        config, datetime.now(UTC) + timedelta(minutes=30), [partner.certificate]
    )
    assert fresh.status == "ok" and fresh.ok
    (crl,) = fresh.crls
    assert crl.url == pki.crl_url
    assert crl.issuer is not None and "Class 3 CA" in crl.issuer
    assert crl.last_fetch is not None and crl.age is not None
    assert timedelta(minutes=29) < crl.age < timedelta(minutes=31)
    assert crl.next_update == crl.this_update + timedelta(days=1)  # type: ignore[operator]
    assert not crl.stale
    assert "fail-closed" in fresh.detail
    json.dumps(fresh.as_dict())

    stale = revocation_health(config, NOW + timedelta(days=2))
    assert stale.status == "fail" and not stale.ok
    assert stale.crls[0].stale and "nextUpdate" in (stale.crls[0].problem or "")
    document = stale.as_dict()
    assert document["name"] == "revocation" and document["crls"][0]["stale"] is True


def test_health_fails_for_an_untrusted_issuer_and_unusable_issuers(
    server: RevocationServer, pki: RevocationPki, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path)
    stranger = RevocationPki.create(server.base_url, now=NOW, label="-stranger")
    foreign = stranger.issue("Fremmed", key_name="revocation-foreign")
    report = revocation_health(config, NOW, [foreign.certificate])
    assert report.status == "fail" and "not in revocation.issuers_dir" in report.detail
    gone = RevocationConfig(cache_dir=tmp_path / "crl", issuers_dir=tmp_path / "nowhere")
    assert revocation_health(gone, NOW).status == "fail"


# --- config --------------------------------------------------------------------------------------


def test_the_revocation_table_is_read_with_defaults(tmp_path: Path) -> None:
    assert RevocationConfig.from_toml({}, base=tmp_path) is None
    assert (
        RevocationConfig.from_toml(
            tomllib.loads('[revocation]\nenabled = false\ncache_dir = "x"'), base=tmp_path
        )
        is None
    )
    document = tomllib.loads(
        """
        [revocation]
        cache_dir = "var/crl"
        issuers_dir = "issuers"
        max_age = 7200
        stale = "fail-open"
        timeout = 2.5

        [[revocation.ocsp]]
        issuer = "buypass.pem"
        url = "http://ocsp.example.test/"

        [[revocation.ocsp]]
        issuer = "commfides.pem"
        """
    )
    config = RevocationConfig.from_toml(document, base=tmp_path, source="local.toml")
    assert config is not None
    assert config.cache_dir == (tmp_path / "var/crl").resolve()
    assert config.issuers_dir == (tmp_path / "issuers").resolve()
    assert config.max_age == timedelta(hours=2)
    assert config.refresh_interval == timedelta(hours=1)  # the default
    assert config.stale == "fail-open" and not config.fail_closed
    assert config.timeout == 2.5
    assert config.ocsp == (
        OcspResponder("buypass.pem", "http://ocsp.example.test/"),
        OcspResponder("commfides.pem", None),
    )
    assert config.responder_for("commfides.pem") == OcspResponder("commfides.pem")
    assert config.responder_for("other.pem") is None
    default = RevocationConfig.from_toml(
        {"revocation": {"cache_dir": "c", "issuers_dir": "i"}}, base=tmp_path
    )
    assert default is not None and default.fail_closed


def table(**extra: object) -> dict[str, object]:
    return {"cache_dir": "c", "issuers_dir": "i", **extra}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"issuers_dir": "i"}, "revocation.cache_dir must be a path"),
        (table(stale="maybe"), "revocation.stale must be"),
        (table(max_age=-1), "revocation.max_age must be a positive number of seconds"),
        (table(max_age=True), "revocation.max_age must be"),
        (table(max_crl_bytes=1.5), "revocation.max_crl_bytes must be a positive integer"),
        (table(refresh=60), "unknown key revocation.refresh"),
        (table(ocsp={"a": 1}), "revocation.ocsp must be an array of tables"),
        (table(ocsp=[{"issuer": "a.pem", "url": "ftp://x"}]), "revocation.ocsp[0].url must be"),
        (table(ocsp=[{"issuer": "a.pem"}, {"url": "http://x"}]), "revocation.ocsp[1].issuer must"),
        (
            table(ocsp=[{"issuer": "a.pem"}, {"issuer": "a.pem"}]),
            "revocation.ocsp[1].issuer 'a.pem' is listed twice",
        ),
        (table(ocsp=[{"issuer": "a", "x": 1}]), "unknown key revocation.ocsp[0].x"),
        (table(enabled="yes"), "revocation.enabled must be true or false"),
    ],
)
def test_a_bad_revocation_table_names_the_key(
    table: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=rf"^local\.toml: {re.escape(message)}"):
        RevocationConfig.from_toml({"revocation": table}, base=tmp_path, source="local.toml")


# --- the issuers directory -----------------------------------------------------------------------


def test_the_issuers_directory_holds_only_ca_certificates(
    pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    directory = pki.write_issuers(tmp_path / "issuers")
    issuers = Issuers.load(directory)
    assert sorted(i.file_name for i in issuers) == ["intermediate.pem", "root.der"]
    found = issuers.issuer_of(partner.certificate)
    assert found is not None and found.file_name == "intermediate.pem"
    (directory / "partner.pem").write_bytes(partner.pem)
    with pytest.raises(ConfigurationError, match=r"partner\.pem: .* is not a CA certificate"):
        Issuers.load(directory)
    (directory / "partner.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")
    with pytest.raises(ConfigurationError, match=r"partner\.pem: holds no X\.509 certificate"):
        Issuers.load(directory)
    with pytest.raises(ConfigurationError, match="cannot be listed"):
        Issuers.load(tmp_path / "nowhere")


# --- HTTP ----------------------------------------------------------------------------------------


def test_fetching_is_bounded_and_http_only(server: RevocationServer, tmp_path: Path) -> None:
    server.serve_crl(b"x" * 2000, path="/big")
    assert (
        http_get(server.base_url + "/big", timeout=5, max_bytes=2000, accept="*/*") == b"x" * 2000
    )
    with pytest.raises(RevocationSourceError, match="larger than 1999 bytes"):
        http_get(server.base_url + "/big", timeout=5, max_bytes=1999, accept="*/*")
    (tmp_path / "secret").write_text("secret")
    with pytest.raises(RevocationSourceError, match="only http"):
        http_get(f"file://{tmp_path}/secret", timeout=5, max_bytes=100, accept="*/*")
    server.redirects["/moved"] = f"file://{tmp_path}/secret"
    with pytest.raises(RevocationSourceError, match="HTTP 302"):
        http_get(server.base_url + "/moved", timeout=5, max_bytes=100, accept="*/*")
    server.redirects["/elsewhere"] = server.base_url + "/big"
    assert (
        len(http_get(server.base_url + "/elsewhere", timeout=5, max_bytes=2000, accept="*/*"))
        == 2000
    )
    with pytest.raises(RevocationSourceError, match="HTTP 404"):
        http_get(server.base_url + "/missing", timeout=5, max_bytes=100, accept="*/*")
    with pytest.raises(RevocationSourceError):
        http_get("http://127.0.0.1:9/", timeout=2, max_bytes=100, accept="*/*")
