"""The console as a person uses it, in a real Chromium (Debian's ``chromium``, driven by
Playwright; never ``playwright install``): log in with the keyboard, work the worklist,
override a bill and see the new status, requeue a dead letter, download a statistics file.

Screenshots of the main pages are kept under ``test-artifacts/web/`` (or
``$GATEWAY_TEST_ARTIFACTS``); the folder is printed. Without /usr/bin/chromium the tests skip
locally and fail in CI (``make deps`` installs it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.net import free_port
from tests.support.oidc import CLIENT_SECRET, OidcProvider, oidc_section
from tests.support.web import PASSWORD, Console

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the sandbox refuses to run as root (CI runs as root)
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(
    os.environ.get(
        "GATEWAY_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"
    )
) / "web"



@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (make deps installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must have chromium: {reason}")
        pytest.skip(reason)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {ARTIFACTS}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()



@pytest.fixture
def page(browser: Browser, web: Console) -> Iterator[Page]:
    context = browser.new_context(base_url=web.base, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Page, user: str) -> None:
    """Log in the way a keyboard user does: type, Tab, type, Enter."""
    page.goto("/logg-inn")
    shot(page, "01-logg-inn")
    page.get_by_label("Brukernavn").focus()
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/logg-inn" not in url)


def test_case_worker_works_the_worklist_and_overrides_a_bill(page: Page, web: Console) -> None:
    log_in(page, "sara")
    page.goto("/arbeidsliste")
    count = int(page.locator("#antall").inner_text())
    assert count == len(web.seeded.manual_bill_ids) + len(web.seeded.other_manual_bill_ids)
    shot(page, "02-arbeidsliste")
    # The skip link is the first stop for the keyboard.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Hopp til innholdet"
    page.get_by_role("link", name=f"Regning {web.seeded.manual_bill_ids[0]}").click()
    page.get_by_role("heading", name="Regler kjørt nå").wait_for()
    shot(page, "03-regning")
    page.get_by_label("Avvis").check()
    page.get_by_label("Begrunnelse (påkrevd)").fill("Kontakten er ikke dokumentert.")
    page.get_by_role("button", name="Lagre overstyring").click()
    page.get_by_role("status").wait_for()
    assert page.locator("#gjeldende-status").inner_text() == "avvist, 0,00 kr"
    shot(page, "04-regning-overstyrt")
    page.goto("/arbeidsliste")
    assert int(page.locator("#antall").inner_text()) == count - 1
    for pid in web.seeded.patient_ids:
        assert pid not in page.content()


def test_operator_requeues_a_dead_letter(page: Page, web: Console) -> None:
    log_in(page, "dag")
    page.goto("/drift")
    assert page.locator("#dode-brev").inner_text() == "1"
    shot(page, "05-drift")
    page.get_by_role("link", name="Se og behandle").click()
    page.get_by_label(f"Velg svar {web.seeded.dead_reply_id}").check()
    shot(page, "06-dode-brev")
    page.get_by_role("button", name="Send valgte på nytt").click()
    page.get_by_text("Brevene er satt i kø").wait_for()
    reply = web.data.store.outbox.reply(web.seeded.dead_reply_id)
    assert reply is not None and reply.state == "pending"
    page.goto("/drift/meldinger?fra=2000-01-01T00:00")
    shot(page, "07-meldinger")


def test_statistics_file_is_downloaded(page: Page, web: Console, tmp_path: Path) -> None:
    log_in(page, "dag")
    page.goto("/statistikk")
    page.get_by_label("Mål").select_option("kontakter")
    page.get_by_label("fylke").uncheck()  # checked by default
    page.get_by_label("kjonn").check()
    page.get_by_label("Periode", exact=False).fill("2026-10")
    page.get_by_role("button", name="Lag tabell").click()
    page.wait_for_url("**/statistikk/resultat/**", timeout=60_000)
    shot(page, "08-statistikk")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    target = tmp_path / "kontakter.csv"
    download.value.save_as(str(target))
    text = target.read_bytes().decode("utf-8-sig")
    assert "kontakter" in text.lower() or ";" in text
    assert download.value.suggested_filename == "kontakter-kjonn-2026-10.csv"


def test_a_case_worker_logs_in_through_the_identity_provider(
    browser: Browser,
    start_console: Callable[..., AbstractContextManager[Console]],
    tmp_path: Path,
) -> None:
    """The provider is another site (localhost, the console 127.0.0.1), and the way back starts
    on its page: the flow cookie must come back with it, and the strict session cookie must be
    sent on the next page all the same."""
    secret = tmp_path / "oidc-secret"
    secret.write_text(CLIENT_SECRET, encoding="utf-8")
    port = free_port()
    user = {"preferred_username": "sofie", "name": "Sofie SSO", "groups": ["kuhr-saksbehandlere"]}
    with OidcProvider(user=user, host="localhost", page=True) as provider:
        section = oidc_section(provider, f"http://127.0.0.1:{port}", str(secret))
        with start_console(api_extra=section, port=port) as web:
            context = browser.new_context(base_url=web.base)
            tab = context.new_page()
            tab.set_default_timeout(20_000)
            try:
                tab.goto("/arbeidsliste")
                tab.wait_for_url("**/logg-inn?neste=/arbeidsliste")
                tab.get_by_role("link", name="Logg inn med Testleverandøren").click()
                tab.get_by_role("link", name="Fortsett").click()  # at the provider
                tab.wait_for_url(f"{web.base}/arbeidsliste")
                tab.locator("#antall").wait_for()
                assert "Sofie SSO" in tab.content()
                shot(tab, "09-arbeidsliste-etter-oidc")
            finally:
                context.close()
    assert "/token" in provider.paths() and provider.token_errors == []
