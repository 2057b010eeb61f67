"""/docs in a real browser (docs/api.md, Operations): headless Chromium against a real gunicorn on loopback.

The page must render the operations from the app's own files with no console error and no CSP
violation, and "Authorize" then "Try it out" / "Execute" on GET /api/v1/survivors must show a
live 200. Chromium reaches nothing but loopback. A screenshot of the result is kept in
TEST_ARTIFACTS_DIR (default test-artifacts/, git-ignored).

Chromium and chromedriver come from `.ci/system-packages`; without them this is skipped with a
clear message, unless REQUIRE_SERVICES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.server import ADMIN_PASSWORD, ROOT, GunicornServer, server_environ

pytestmark = pytest.mark.gunicorn

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_SECONDS = 15  # every explicit wait; nothing here sleeps
WINDOW = (1280, 1400)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    # Nothing but loopback: every host name fails to resolve (the server is an IP literal).
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--no-proxy-server",
)
# Recorded from the first script on every page (a CDP script, not subject to the page's CSP).
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    [event.effectiveDirective, event.blockedURI, event.sourceFile, event.lineNumber].join(" ")
  );
});
"""
SURVIVORS_GET = "#operations-survivors-getSurvivors"


@pytest.fixture
def browser_binaries() -> tuple[str, str]:
    """Chromium and its driver, or a skip (a failure under REQUIRE_SERVICES=1)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        message = f"{' and '.join(missing)} missing: run .ci/system-packages (as root)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (REQUIRE_SERVICES=1)")
        pytest.skip(message)
    return CHROMIUM, CHROMEDRIVER


def artifacts_dir() -> Path:
    """Where screenshots go: $TEST_ARTIFACTS_DIR, else <repo>/test-artifacts/."""
    directory = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "test-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def server(
    app: Flask, db_url: str, tmp_path: Path, browser_binaries: tuple[str, str]
) -> Iterator[GunicornServer]:
    """The API under a real gunicorn on loopback (only once the browser is known to be there)."""
    with GunicornServer(server_environ(db_url), tmp_path / "gunicorn.log") as running:
        yield running


@pytest.fixture
def driver(
    server: GunicornServer,  # noqa: ARG001 - set up first, so the browser quits before it stops
    browser_binaries: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[webdriver.Chrome]:
    """Headless Chromium on a fresh profile, driven by the system chromedriver; always quit."""
    chromium, chromedriver = browser_binaries

    # Selenium Manager must never fetch a driver or a browser: the paths are given explicitly
    # (which skips it), and offline mode covers any other route to it.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    try:
        browser.set_page_load_timeout(WAIT_SECONDS)
        browser.set_script_timeout(WAIT_SECONDS)
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CSP_RECORDER})
        yield browser
    finally:
        browser.quit()  # ends chromedriver and every Chromium process it started


def _admin_token(server: GunicornServer) -> str:
    with server.client() as client:
        # GET /api/v1/survivors needs a token: a 200 in the browser means Authorize took effect.
        assert client.get("/api/v1/survivors").status_code == 401
        response = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _requested_urls(browser: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_docs_page_authorize_try_it_out_execute(
    server: GunicornServer, driver: webdriver.Chrome, db_url: str
) -> None:
    wait = WebDriverWait(driver, WAIT_SECONDS)

    def visible(css: str) -> WebElement:
        return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)), css)

    def click(css: str) -> None:
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, css)), css).click()

    token = _admin_token(server)
    screenshot = artifacts_dir() / f"docs-try-it-out-{db_url.split(':', 1)[0].split('+')[0]}.png"
    failure_screenshot = screenshot.with_name(screenshot.stem + "-failure.png")
    for stale in (screenshot, failure_screenshot):
        stale.unlink(missing_ok=True)
    try:
        driver.get(f"{server.base_url}/docs")

        # The operations render, from our own spec.
        survivors = visible(f"{SURVIVORS_GET}.opblock-get")
        path = survivors.find_element(By.CSS_SELECTOR, ".opblock-summary-path")
        assert path.get_attribute("data-path") == "/api/v1/survivors"
        for operation in ("getTrades", "postTrades", "getTradeById", "postTradeAccept"):
            visible(f"#operations-trades-{operation}")

        # Authorize with the admin's bearer token (pasted: one input event, not one per key).
        click(".auth-wrapper .btn.authorize")
        click(".modal-ux .auth-container input")
        driver.execute_cdp_cmd("Input.insertText", {"text": token})
        click(".modal-ux .auth-btn-wrapper .btn.authorize")
        logout = "//div[contains(@class, 'modal-ux')]//button[normalize-space()='Logout']"
        wait.until(ec.visibility_of_element_located((By.XPATH, logout)), "not authorized")
        click(".modal-ux .auth-btn-wrapper .btn-done")
        wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")), "modal still open")
        visible(".auth-wrapper .btn.authorize.locked")

        # GET /api/v1/survivors: open, Try it out, Execute, a live 200.
        click(f"{SURVIVORS_GET} .opblock-summary-control")
        click(f"{SURVIVORS_GET} .try-out__btn")
        click(f"{SURVIVORS_GET} .btn.execute")
        status = visible(f"{SURVIVORS_GET} .live-responses-table .response .response-col_status")
        body = visible(f"{SURVIVORS_GET} .live-responses-table .response-col_description pre")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", status)
        assert (status.text.strip(), '"items"' in body.text) == ("200", True), (status.text, body.text)
        assert driver.save_screenshot(str(screenshot))
    except Exception:
        driver.save_screenshot(str(failure_screenshot))  # what the page showed, for the report
        raise

    console = driver.get_log("browser")
    violations = driver.execute_script("return window.__cspViolations;")
    urls = _requested_urls(driver)
    assert violations == [], violations
    assert [entry for entry in console if entry["level"] in {"SEVERE", "WARNING"}] == [], console
    assert not [entry for entry in console if "Content Security Policy" in entry["message"]], console
    # The browser asked our server alone for anything: no CDN, no validator, no other host.
    assert f"{server.base_url}/api/v1/survivors" in {url.split("?")[0] for url in urls}, urls
    network = [url for url in urls if url.split(":", 1)[0] in {"http", "https", "ws", "wss"}]
    assert all(url.startswith(f"{server.base_url}/") for url in network), network

    assert screenshot.is_file()
    assert screenshot.stat().st_size > 20_000, screenshot.stat().st_size
    width, height = _png_size(screenshot)
    assert width >= 800 and height >= 600, (width, height)
