"""The tracker on a PostgreSQL primary with a synchronous hot standby, through libpq's multi-host
URL (``target_session_attrs=read-write``): the primary dies mid-rollout, the standby is promoted,
and the same tracker process, unchanged, goes on writing to it. What operations.md says the
database must provide, tried: real servers (Debian's package), real seedbox and client processes.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from client.store import ModelStore
from common.manifest import Manifest
from tests.conftest import ADMIN, publish_model
from tests.postgres import PostgresServer
from tests.test_integration import run_client, start_seedbox, wait_until
from tools.demo.procs import Procs, start_tracker
from tracker.api_client import TrackerClient

pytestmark = pytest.mark.integration
MiB = 1 << 20


def test_a_promoted_standby_takes_over_with_no_host_state_lost(tmp_path: Path, procs: Procs,
                                                                 publisher_key: Path) -> None:
    primary = PostgresServer()
    standby: PostgresServer | None = None
    try:
        name = primary.new_database().rsplit("/", 1)[1]
        standby = PostgresServer(replica_of=primary)
        primary.wait_for_standbys()
        # libpq tries the hosts in turn and keeps the one that takes writes (SQLAlchemy passes each host=).
        both = (f"postgresql+psycopg://postgres@/{name}?host=127.0.0.1:{primary.port}"
                f"&host=127.0.0.1:{standby.port}&target_session_attrs=read-write")
        url = start_tracker(procs, both, ADMIN, interval=2)
        publish_model(tmp_path, url, publisher_key, {"w.safetensors": 4 * MiB}, piece_size=256 * 1024,
                      source=str(tmp_path / "external-m-1"))
        with TrackerClient(url, admin_token=ADMIN) as admin:
            seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
            h1 = admin.add_host("h1", location="dc1|pod1|rack1")["passkey"]
            h2 = admin.add_host("h2", location="dc1|pod1|rack2")["passkey"]
        start_seedbox(procs, tmp_path, url, seedbox)
        wait_until(lambda: "seeding" in procs.log("seedbox"), 60, "the seedbox seeding")
        done = run_client(tmp_path, url, h1, "h1")
        assert done.returncode == 0, done.stderr

        primary.crash()
        # Before the promotion no server takes writes: the API says so and to retry (not a 500).
        down = httpx.get(f"{url}/api/hosts", headers={"Authorization": f"Bearer {ADMIN}"})
        assert down.status_code == 503 and "database is unavailable" in down.json()["detail"], down.text
        assert down.headers["Retry-After"]
        standby.promote()

        # The same tracker: announces, the peer store's writes and status reports go to the new primary.
        done = run_client(tmp_path, url, h2, "h2")
        assert done.returncode == 0, done.stderr
        manifest = Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes())
        manifest.verify_data(ModelStore(tmp_path / "hosts" / "h2").current("m"))
        with TrackerClient(url, admin_token=ADMIN) as admin:
            assert {h["name"] for h in admin.list_hosts()} == {"seedbox", "h1", "h2"}
            states = {row["host"]: row["state"] for row in admin.status("m")}
        assert states.get("h1") in ("activated", "seeding"), states  # written before the crash: kept
        assert states.get("h2") in ("activated", "seeding"), states
        metrics = httpx.get(f"{url}/metrics").text
        assert 'modeltorrent_hosts{state="active"} 3.0' in metrics, metrics
        assert "Exception in ASGI application" not in procs.log("tracker")  # requests cut by the crash: 503s
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()
