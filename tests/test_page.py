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


def keep_screenshot(page, shot: Path) -> None:  # type: ignore[no-untyped-def]
    """The whole page as a PNG at ``shot``, kept in results/ too (the docs show it)."""
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep = Path(__file__).parent.parent / "results"
    keep.mkdir(exist_ok=True)
    shutil.copy(shot, keep / shot.name)


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
            keep_screenshot(page, tmp_path / "swarm-health.png")
        finally:
            browser.close()
    assert httpx.get(f"{url}/api/deployments/{job['id']}").json()["state"] == "partially_failed"
    admin.close()


def test_page_with_a_thousand_hosts_in_thirty_racks(chromium: str, tmp_path: Path, procs: Procs,
                                                     publisher_key: Path) -> None:
    """A fleet's worth of status rows (reported through the API, as agents do): the heatmap stays
    readable, numbers show on demand, a failed hook is listed as a problem, the job has a rate and
    a time to go, activated hosts show no rate, and the throughput history is the tracker's."""
    import random

    from playwright.sync_api import sync_playwright

    url = start_tracker(procs, tmp_path / "t.db", ADMIN, interval=60,
                        env={"MODELTORRENT_TRACKER_RECONCILE_INTERVAL": "0.5",
                             "MODELTORRENT_TRACKER_STALL_TIMEOUT": "3600"})
    admin = TrackerClient(url, admin_token=ADMIN)
    publish_model(tmp_path, url, publisher_key, {"w.safetensors": 4 * MiB}, piece_size=256 * 1024)
    total = 4 * MiB
    names = [f"h{r:02d}-{i:02d}" for r in range(30) for i in range(34)][:1000]
    keys = {n: admin.add_host(n, f"dc1|pod{int(n[1:3]) // 10}|rack{n[1:3]}")["passkey"] for n in names}
    job = admin.deploy("m", "1", all_hosts=True)
    rng = random.Random(3)
    with httpx.Client(base_url=url, timeout=30) as http:
        def report(name: str, **fields: object) -> None:
            r = http.post("/api/status", headers={"X-Passkey": keys[name]},
                          json={"name": "m", "version": "1", **fields})
            assert r.status_code < 300, r.text

        for round_ in range(2):  # two rounds of reports, a few seconds apart: the tracker samples its throughput
            for n in names:
                done = rng.randrange(total) if round_ == 0 else min(total, total // 2 + rng.randrange(total))
                report(n, state="downloading", bytes_done=done, download_rate=float(rng.randrange(1, 50) << 20))
            time.sleep(6)
        report(names[0], state="activated", bytes_done=total, download_rate=0.0,
               error="on-activate hook failed: exit 3 from `systemctl restart inference`")
        report(names[1], state="activated", bytes_done=total)  # its last rate was not zero: none is shown now
        report(names[2], state="failed", error="disk full: 0 bytes free in /var/lib/modeltorrent")
        # a seedbox still ingesting announces (left > 0): a source, not a leecher
        from urllib.parse import quote_from_bytes

        info_hash = bytes.fromhex(admin.list_torrents()[0]["info_hash_v2"])
        seedbox_key = admin.add_host("seedbox", "dc1|pod9|seed", "seedbox")["passkey"]
        answer = http.get(f"/announce?info_hash={quote_from_bytes(info_hash)}&peer_id={'-SB0001-' + 'x' * 12}"
                          f"&port=6881&uploaded=0&downloaded=0&left={total // 2}&passkey={seedbox_key}")
        assert b"failure" not in answer.content, answer.content
    shown = httpx.get(f"{url}/api/deployments/{job['id']}").json()
    rows = {h["host"]: h for h in shown["hosts"]}
    assert rows[names[1]]["download_rate"] == 0.0 and rows[names[0]]["download_rate"] == 0.0
    assert shown["download_rate"] > 0 and shown["eta_seconds"] > 0
    overview = httpx.get(f"{url}/api/overview").json()
    assert len(overview["history"]) >= 2  # samples from before any browser opened the page

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            opened = time.time()
            page.goto(url + "/")
            page.wait_for_function("() => document.querySelectorAll('#heatmap .cell').length === 1000",
                                   timeout=20_000)
            assert page.locator("#heatmap .rack").count() == 30
            chart = page.locator('[data-testid="chart"]')
            page.wait_for_function("() => +document.getElementById('chart').dataset.samples >= 2", timeout=10_000)
            assert float(chart.get_attribute("data-from") or 0) < opened - 5  # history older than the page
            problems = page.locator('[data-testid="problems"]').inner_text()
            assert "on-activate hook failed" in problems and "disk full" in problems
            assert "about" in page.locator('[data-testid="job-eta"]').first.inner_text()
            # every host fits on one screen without numbers; with them, each square says its share
            box = page.locator('[data-testid="heatmap"]').bounding_box()
            assert box is not None and box["height"] < 1000
            page.locator('[data-testid="numbers"]').check()
            first = names[0]
            page.wait_for_function(f"() => document.querySelector('[data-host=\"{first}\"]').textContent === '100'",
                                   timeout=5_000)
            page.locator(f'[data-host="{names[2]}"]').click()
            assert "disk full" in page.locator('[data-testid="detail"]').inner_text()
            page.locator(f'[data-host="{names[1]}"]').click()  # activated: no rate of its download lingers
            page.wait_for_function(f"() => document.querySelector('[data-testid=\"detail\"]').textContent"
                                   f".startsWith('{names[1]} ')", timeout=5_000)
            detail = page.locator('[data-testid="detail"]').inner_text()
            assert "activated, 100.0% verified" in detail and "/s" not in detail
            swarms = page.locator("#swarms").inner_text().split()
            assert swarms == ["m@1", "1", "0"], swarms  # the seedbox is a seeder, not a leecher
            page.locator('[data-testid="numbers"]').uncheck()
            keep_screenshot(page, tmp_path / "swarm-health-1000.png")
        finally:
            browser.close()
    admin.close()
