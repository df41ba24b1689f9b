"""The dashboard in a real browser: headless Debian Chromium against a running ``serve``.

The assertions read the DOM after the page's script ran: values only the script fills, a
cycle appearing without a reload, the trace view one click away. Screenshots are saved
under ``.artifacts/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from browser import Chromium
from conftest import require_binary
from factories import ROOT, Served, serve_sample

pytestmark = pytest.mark.slow
ARTIFACTS = ROOT / ".artifacts"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # a long interval: after the first, cycles run when objectives arrive
    with serve_sample(tmp_path_factory.mktemp("browser"), interval=3600) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium(require_binary("chromium")) as chromium:
        yield chromium


def text(browser: Chromium, selector: str) -> str:
    return browser.evaluate(f"document.querySelector({selector!r}).textContent.trim()")


def test_the_script_fills_the_page_from_the_live_stream(browser, served):
    browser.open(f"{served.url}/")

    browser.wait_for("document.getElementById('live').dataset.state === 'live'")
    document = httpx.get(f"{served.url}/api/dashboard").json()

    assert text(browser, "#live").startswith("live · updated ")
    assert int(browser.evaluate("document.body.dataset.updates")) >= 1
    started = text(browser, "#cycles tbody tr time, #cycles tbody tr td:nth-child(2)")
    assert ":" in started  # the script wrote a local date; the server wrote epoch seconds
    shown = browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#kpis .kpi')].map("
        "k => [k.dataset.kpi, k.querySelector('.kpi-value').textContent]))"
    )
    assert shown == {k["key"]: k["display"] for k in document["kpis"]}
    assert text(browser, "#status") == document["status"]


def test_a_new_cycle_appears_without_a_reload(browser, served):
    browser.open(f"{served.url}/")
    browser.wait_for("document.getElementById('live').dataset.state === 'live'")
    browser.evaluate("window.__sameDocument = 'yes'")
    before = int(browser.evaluate("document.body.dataset.updates"))

    queued = httpx.post(
        f"{served.url}/api/objectives",
        json={"objective": "Add a docstring to the pricing module", "correlation_id": "browser-1"},
    )
    assert queued.status_code == 202

    row = "document.querySelector('tr[data-correlation-id=\"browser-1\"]')"
    browser.wait_for(f"{row} && !{row}.textContent.includes('running')", timeout=120)
    assert browser.evaluate("window.__sameDocument") == "yes"
    assert int(browser.evaluate("document.body.dataset.updates")) > before
    assert "Add a docstring to the pricing module" in browser.evaluate(f"{row}.textContent")
    assert browser.evaluate("document.querySelectorAll('#chart rect').length") >= 2
    shot = browser.screenshot(ARTIFACTS / "dashboard.png")
    assert shot.read_bytes().startswith(PNG)


def test_a_click_on_a_cycle_opens_its_trace(browser, served):
    browser.open(f"{served.url}/")
    browser.wait_for("document.getElementById('live').dataset.state === 'live'")
    first = browser.evaluate("document.querySelector('#cycles tbody tr').dataset.correlationId")

    browser.evaluate(f"document.querySelector('a[href=\"/cycles/{first}\"]').click()")
    browser.wait_for(
        f"location.pathname === '/cycles/{first}' && !!document.getElementById('spans')"
    )

    assert text(browser, "#correlation-id") == first
    spans = browser.evaluate(
        "[...document.querySelectorAll('#spans tr[data-span]')].map(r => r.dataset.span)"
    )
    assert spans[0] == "invoke_workflow hephaestus.cycle"
    assert "hephaestus.scan" in spans
    events = browser.evaluate(
        "[...document.querySelectorAll('#logs tbody tr')].map(r => r.cells[3].textContent)"
    )
    assert "cycle finished" in events
    assert browser.screenshot(ARTIFACTS / "trace.png").read_bytes().startswith(PNG)


def test_without_javascript_the_page_still_shows_kpis_and_cycles(browser, served):
    browser.send("Emulation.setScriptExecutionDisabled", value=True)
    try:
        browser.open(f"{served.url}/")
        assert browser.evaluate("document.getElementById('live').dataset.state") == "static"
        assert browser.evaluate("document.querySelectorAll('#kpis .kpi').length") == 6
        assert (
            browser.evaluate(
                "document.querySelectorAll('#cycles tbody tr[data-correlation-id]').length"
            )
            >= 1
        )
    finally:
        browser.send("Emulation.setScriptExecutionDisabled", value=False)
