"""The swarm-health page in a real headless Chromium, during a real (throttled) deployment."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN, publish_model
from tests.system import require_debian_package, skip_or_fail
from tests.test_integration import public_key, start_seedbox
from tools.demo.procs import CLI, Procs, start_tracker
from tracker.api_client import TrackerClient

pytestmark = pytest.mark.integration
MiB = 1 << 20
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = require_debian_package("chromium", "chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -c requirements.lock -e '.[test]')")
    return path


def test_page_shows_a_running_deployment_change_and_its_dead_host(
        chromium: str, tmp_path: Path, procs: Procs, publisher_key: Path) -> None:
    from playwright.sync_api import sync_playwright

    url = start_tracker(procs, tmp_path / "t.db", ADMIN, interval=2,
                        env={"MODELTORRENT_TRACKER_STALL_TIMEOUT": "4",
                             "MODELTORRENT_TRACKER_RECONCILE_INTERVAL": "0.5"})
    admin = TrackerClient(url, admin_token=ADMIN)
    publish_model(tmp_path, url, publisher_key, {"w.safetensors": 6 * MiB}, piece_size=256 * 1024,
                  source=str(tmp_path / "external-m-1"))
    start_seedbox(procs, tmp_path, url, admin.add_host("seedbox", "dc1|pod0|seed", "seedbox")["passkey"])
    for name, location in {"a1": "dc1|pod1|ra", "a2": "dc1|pod1|ra", "b1": "dc1|pod1|rb"}.items():
        passkey = admin.add_host(name, location)["passkey"]
        procs.start(name, [*CLI, "client", "run", "--tracker", url, "--passkey", passkey,
                           "--root", str(tmp_path / "hosts" / name), "--listen", "127.0.0.1:0",
                           "--trust-key", public_key(tmp_path), "--poll-interval", "0.5",
                           "--download-rate", "512KiB"])
    admin.add_host("dead", "dc1|pod1|rb")
    job = admin.deploy("m", "1", all_hosts=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(url + "/")
            cell = page.locator('[data-host="a1"]')
            cell.wait_for(timeout=15_000)
            first = float(cell.get_attribute("data-progress") or 0)
            deadline = time.monotonic() + 60
            later = first
            while later <= first and time.monotonic() < deadline:
                page.wait_for_timeout(500)
                later = float(cell.get_attribute("data-progress") or 0)
            assert later > first, "a1's progress never changed on the page"
            page.locator('[data-host="dead"][data-state="stalled"]').wait_for(timeout=20_000)
            assert "dead" in page.locator('[data-testid="problems"]').inner_text()
            assert "rb" in page.locator('[data-testid="heatmap"]').inner_text()
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-host]')].filter(e => e.dataset.state === 'activated')"
                ".length === 3", timeout=90_000)
            page.wait_for_timeout(1500)  # one more refresh for the job state and throughput chart
            assert page.locator('[data-testid="job-state"]').first.inner_text() == "partially_failed"
            assert "m@1" in page.locator('[data-testid="seedboxes"]').inner_text()
            shot = tmp_path / "swarm-health.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            keep = Path(__file__).parent.parent / "results"
            keep.mkdir(exist_ok=True)
            shutil.copy(shot, keep / "swarm-health.png")
        finally:
            browser.close()
    assert httpx.get(f"{url}/api/deployments/{job['id']}").json()["state"] == "partially_failed"
    admin.close()
