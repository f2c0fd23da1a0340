"""The whole path with real processes on loopback: tracker, HTTP origin, seedbox, libtorrent clients.

Marked ``integration``; each test starts its own tracker (SQLite) and origin.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import libtorrent as lt
import pytest

from client.store import ModelStore
from common import torrent as torrents
from common.manifest import Manifest
from tests.conftest import ADMIN, publish_model
from tests.system import skip_or_fail
from tools.demo.procs import CLI, REPO, Procs, free_port, start_origin

pytestmark = pytest.mark.integration

KiB, MiB = 1024, 1 << 20
FILES = {
    "model-00001-of-00002.safetensors": 3 * MiB + 123,
    "model-00002-of-00002.safetensors": 2 * MiB + 7,
    "tokenizer/tokenizer.json": 40 * KiB,
    "config.json": 321,
}


def public_key(tmp_path: Path) -> str:
    return (tmp_path / "keys" / "publisher.key.pub").read_text().strip()


def start_seedbox(procs: Procs, tmp_path: Path, tracker: str, passkey: str, ref: str = "m@1",
                  env: dict[str, str] | None = None, extra: tuple[str, ...] = (), name: str = "seedbox") -> None:
    """A seedbox process named ``name``, working in ``tmp_path / name``."""
    procs.start(name, [*CLI, "seedbox", "run", ref, "--tracker", tracker, "--passkey", passkey,
                       "--workdir", str(tmp_path / name), "--listen", "127.0.0.1:0",
                       "--trust-key", public_key(tmp_path), *extra], env=env)


def client_argv(tmp_path: Path, tracker: str, passkey: str, host: str, ref: str = "m@1", *extra: str) -> list[str]:
    return [*CLI, "client", "fetch", ref, "--tracker", tracker, "--passkey", passkey,
            "--root", str(tmp_path / "hosts" / host), "--listen", "127.0.0.1:0",
            "--trust-key", public_key(tmp_path), "--json", *extra]


def run_client(tmp_path: Path, tracker: str, passkey: str, host: str, ref: str = "m@1", *extra: str,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run(client_argv(tmp_path, tracker, passkey, host, ref, *extra), capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env)


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def seedbox_status_once_seeding(tmp_path: Path, ref: str = "m@1") -> dict:
    """The seedbox's status file once it says the ingest is done. It is written once a second, so a
    host can be done before its last write (seen: a snapshot from early in the ingest, 321 bytes read)."""
    status_file = tmp_path / "seedbox" / "status" / f"{ref}.json"
    wait_until(lambda: json.loads(status_file.read_text())["state"] == "seeding", 30, "the seedbox's ingest done")
    return json.loads(status_file.read_text())


def status_of(tracker: str, host: str) -> dict:
    rows = [r for r in httpx.get(f"{tracker}/api/status").json() if r["host"] == host]
    return rows[0] if rows else {}


@pytest.mark.parametrize("torrent_format,stripes,sessions", [
    ("hybrid", 1, 1), ("v2", 1, 1), ("v1", 1, 1), ("v2", 3, 1), ("hybrid", 2, 1), ("v2", 3, 3)])
def test_three_hosts_should_receive_verify_and_activate_a_multi_file_model(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path,  # type: ignore[no-untyped-def]
        torrent_format: str, stripes: int, sessions: int) -> None:
    origin = start_origin(procs, tmp_path)
    release = publish_model(tmp_path, tracker_url, publisher_key, FILES, piece_size=256 * KiB,
                            source=f"{origin}/external-m-1", torrent_format=torrent_format, stripes=stripes)
    assert release["stripes"] == stripes
    assert (release["info_hash_v1"] is None) == (torrent_format == "v2")
    assert (release["info_hash_v2"] is None) == (torrent_format == "v1")
    total = sum(FILES.values())
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", "dc1|pod1|seed", "seedbox")["passkey"])
    clients = {}
    for i in range(3):
        host = f"h{i}"
        passkey = admin.add_host(host, f"dc1|pod1|r{i % 2}")["passkey"]
        clients[host] = subprocess.Popen(
            client_argv(tmp_path, tracker_url, passkey, host, "m@1", "--seed-for", "5"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env=os.environ | {"PYTHONPATH": str(REPO), "MODELTORRENT_CLIENT_SESSIONS": str(sessions)})
    manifest = Manifest.from_json(httpx.get(f"{tracker_url}/api/torrents/m/1/manifest",
                                            headers={"Authorization": f"Bearer {ADMIN}"}).content)
    seen: list[tuple[int, int]] = []  # (stripe, hosts in its swarm), the most seen at once

    def stripes_joined() -> bool:
        with contextlib.closing(sqlite3.connect(tmp_path / "tracker.db")) as db:
            rows = db.execute("SELECT release.stripe, count(DISTINCT peer.host_id) FROM release JOIN peer "
                              "ON peer.release_id = release.id WHERE release.stripe_of IS NOT NULL "
                              "GROUP BY release.stripe").fetchall()
        if sum(n for _, n in rows) > sum(n for _, n in seen):
            seen[:] = rows
        return sum(n for _, n in rows) == 4 * stripes or any(p.poll() is not None for p in clients.values())

    if stripes > 1:
        wait_until(stripes_joined, 60, "every host in every stripe's swarm")
    for host, proc in clients.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["activated"] and not result["already_active"]
        store = ModelStore(tmp_path / "hosts" / host)
        assert store.active_version("m") == "1"
        assert os.readlink(store.current("m")) == "versions/1"
        manifest.verify_data(store.current("m"))  # every piece, independently of the client
        assert (store.current("m") / "tokenizer" / "tokenizer.json").stat().st_size == 40 * KiB
        assert not (tmp_path / "hosts" / host / "m" / "staging" / "1").exists()
    served = httpx.get(f"{origin}/_stats").json()["bytes_sent"]
    assert served == total == release["total_size"]  # external storage read exactly once
    assert seedbox_status_once_seeding(tmp_path)["bytes_read_from_source"] == total
    assert status_of(tracker_url, "h0")["state"] in ("activated", "seeding")
    if stripes > 1:  # each stripe was a swarm: every host and the seedbox announced in each
        assert sorted(seen) == [(k, 4) for k in range(stripes)], seen
        listed = httpx.get(f"{tracker_url}/api/torrents", headers={"Authorization": f"Bearer {ADMIN}"}).json()
        assert [r["version"] for r in listed] == ["1"]  # the stripes are not versions of their own


def test_a_model_in_s3_reaches_a_host_and_is_read_from_s3_once(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    import boto3

    from tools.demo.procs import start_s3

    aws = {"AWS_ENDPOINT_URL": start_s3(procs), "AWS_ACCESS_KEY_ID": "mt", "AWS_SECRET_ACCESS_KEY": "mt",
           "AWS_DEFAULT_REGION": "us-east-1"}
    release = publish_model(tmp_path, tracker_url, publisher_key, FILES, piece_size=256 * KiB,
                            source="s3://models/m/1")
    s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], aws_access_key_id="mt",
                      aws_secret_access_key="mt", region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    for rel in FILES:
        s3.upload_file(str(tmp_path / "external-m-1" / rel), "models", f"m/1/{rel}")
    s3.close()
    # The ingress cap on the way (its pacing is tested in test_limits.py, without clocks).
    metrics = f"127.0.0.1:{free_port()}"
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", role="seedbox")["passkey"], env=aws,
                  extra=("--ingress-rate", "8MiB", "--metrics-listen", metrics))
    done = run_client(tmp_path, tracker_url, admin.add_host("h1")["passkey"], "h1")
    assert done.returncode == 0, done.stderr
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))
    read = seedbox_status_once_seeding(tmp_path)["bytes_read_from_source"]
    assert read == sum(FILES.values()) == release["total_size"]
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(httpx.get(f"http://{metrics}/metrics").text)
               for s in family.samples}
    model = (("model", "m@1"),)
    assert samples[("modeltorrent_seedbox_ingress_bytes_total", model)] == release["total_size"]
    assert samples[("modeltorrent_seedbox_pieces_verified_total", model)] == release["num_pieces"]
    assert samples[("modeltorrent_seedbox_pieces_failed_total", model)] == 0
    assert samples[("modeltorrent_seedbox_state", (("model", "m@1"), ("state", "seeding")))] == 1


def kill_a_client_half_way(tmp_path: Path, procs: Procs, tracker_url: str, admin,  # type: ignore[no-untyped-def]
                           publisher_key: Path, stripes: int = 1) -> tuple[str, set[int]]:
    """Host h1 downloads 48 pieces of 256 KiB and is SIGKILLed once a dozen are saved as verified;
    returns its passkey and the pieces saved."""
    files = {"weights.safetensors": 12 * MiB}
    publish_model(tmp_path, tracker_url, publisher_key, files, piece_size=256 * KiB,
                  source=str(tmp_path / "external-m-1"), stripes=stripes)
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", role="seedbox")["passkey"])
    passkey = admin.add_host("h1")["passkey"]
    # A download cap slows the first run so it can be killed half way (the cap applies on
    # loopback because every address is in libtorrent's global peer class).
    first = procs.start("client-1", client_argv(tmp_path, tracker_url, passkey, "h1", "m@1",
                                                "--download-rate", "1MiB"),
                        env={"MODELTORRENT_CLIENT_RESUME_INTERVAL": "0.5"})
    sidecar = tmp_path / "hosts" / "h1" / "m" / "state" / "1.verified.json"
    wait_until(lambda: sidecar.exists() and len(json.loads(sidecar.read_text())["pieces"]) >= 12, 90,
               "a dozen verified pieces saved")
    first.send_signal(signal.SIGKILL)
    first.wait()
    saved = set(json.loads(sidecar.read_text())["pieces"])
    assert 12 <= len(saved) < 48
    assert ModelStore(tmp_path / "hosts" / "h1").active_version("m") is None
    return passkey, saved


@pytest.mark.parametrize("stripes", [1, 3])
def test_a_killed_client_should_resume_without_downloading_verified_pieces_again(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path,  # type: ignore[no-untyped-def]
        stripes: int) -> None:
    piece = 256 * KiB
    passkey, saved = kill_a_client_half_way(tmp_path, procs, tracker_url, admin, publisher_key, stripes)
    second = run_client(tmp_path, tracker_url, passkey, "h1")
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout.strip().splitlines()[-1])
    missing = 48 - len(saved)
    assert result["pieces_verified_at_start"] >= len(saved)
    # Only pieces not saved as verified crossed the network again (a block of slack per piece).
    assert 0 < result["bytes_downloaded"] <= missing * piece + 16 * KiB * missing, second.stderr[-3000:]
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))


@pytest.mark.parametrize("stripes", [1, 3])
def test_after_a_host_reboot_pieces_on_disk_are_checked_again_and_lost_writes_downloaded(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path,  # type: ignore[no-untyped-def]
        stripes: int) -> None:
    piece = 256 * KiB
    passkey, saved = kill_a_client_half_way(tmp_path, procs, tracker_url, admin, publisher_key, stripes)
    # The reboot: the state was saved in another boot, and one piece it calls verified never
    # reached the disk (the page cache was lost with the power).
    sidecar = tmp_path / "hosts" / "h1" / "m" / "state" / "1.verified.json"
    sidecar.write_text(json.dumps({"boot": "an-earlier-boot", "pieces": sorted(saved)}))
    lost = min(saved)
    with open(tmp_path / "hosts" / "h1" / "m" / "staging" / "1" / "weights.safetensors", "r+b") as f:
        f.seek(lost * piece)
        f.write(bytes(piece))
    second = run_client(tmp_path, tracker_url, passkey, "h1")
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout.strip().splitlines()[-1])
    if stripes == 1:  # nothing taken on trust from before the reboot: libtorrent checks the disk
        assert result["pieces_verified_at_start"] == 0
    else:  # checked once against the manifest before the stripes' torrents are added (not once per stripe)
        assert len(saved) - 1 <= result["pieces_verified_at_start"] < 48
    # At least the lost piece is downloaded again; at most it and what the state had not saved yet
    # (pieces written after the last save are found on disk by the recheck, not downloaded).
    missing = 48 - len(saved) + 1
    assert piece <= result["bytes_downloaded"] <= missing * (piece + 16 * KiB)
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))


def test_bytes_flipped_at_the_source_never_reach_the_swarm_and_nothing_is_activated(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    publish_model(tmp_path, tracker_url, publisher_key, FILES, piece_size=256 * KiB,
                  source=str(tmp_path / "external-m-1"))
    target = tmp_path / "external-m-1" / "model-00002-of-00002.safetensors"
    data = bytearray(target.read_bytes())
    data[5 * 256 * KiB + 3] ^= 0x01  # one bit of one piece, after publishing
    target.write_bytes(bytes(data))
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", role="seedbox")["passkey"])
    passkey = admin.add_host("h1")["passkey"]
    client = procs.start("client", client_argv(tmp_path, tracker_url, passkey, "h1"))
    seedbox = procs.procs["seedbox"]
    assert seedbox.wait(timeout=60) == 1
    assert "does not match the manifest" in procs.log("seedbox")
    time.sleep(3)
    assert client.poll() is None  # still waiting for a piece nobody can give it
    procs.stop("client")
    store = ModelStore(tmp_path / "hosts" / "h1")
    assert store.active_version("m") is None and not store.version_dir("m", "1").exists()
    assert status_of(tracker_url, "seedbox")["state"] == "failed"


def test_bytes_a_source_got_wrong_once_are_read_again_and_the_right_ones_activated(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    piece = 256 * KiB
    origin = start_origin(procs, tmp_path, flip_once=5 * piece + 3)  # one bit of piece 5, in its first read only
    publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": 12 * piece}, piece_size=piece,
                  source=f"{origin}/external-m-1")
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", role="seedbox")["passkey"],
                  env={"MODELTORRENT_LOG": "INFO"})
    assert run_client(tmp_path, tracker_url, admin.add_host("h1")["passkey"], "h1", "m@1").returncode == 0
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))
    status = json.loads((tmp_path / "seedbox" / "status" / "m@1.json").read_text())
    assert status["bad_pieces"] == 1 and status["pieces_done"] == 12
    assert status["bytes_read_from_source"] == 13 * piece  # piece 5 twice, the others once
    log = procs.log("seedbox")
    assert "source served wrong bytes for piece 5" in log and "web seed lanes renewed" in log


def h1_on_v1_with_v2_published(tmp_path: Path, procs: Procs, tracker_url: str, admin,  # type: ignore[no-untyped-def]
                               publisher_key: Path) -> tuple[str, ModelStore]:
    """Versions 1 and 2 of a one-file model published, a seedbox, host h1 on version 1."""
    publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": 1 * MiB},
                  piece_size=256 * KiB, source=str(tmp_path / "external-m-1"))
    publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": 1 * MiB}, version="2",
                  piece_size=256 * KiB, source=str(tmp_path / "external-m-2"), seed=2)
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", role="seedbox")["passkey"])
    passkey = admin.add_host("h1")["passkey"]
    assert run_client(tmp_path, tracker_url, passkey, "h1", "m@1").returncode == 0
    store = ModelStore(tmp_path / "hosts" / "h1")
    assert store.active_version("m") == "1"
    return passkey, store


def test_a_tampered_manifest_is_refused_and_the_active_version_stays(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    passkey, store = h1_on_v1_with_v2_published(tmp_path, procs, tracker_url, admin, publisher_key)

    db = sqlite3.connect(tmp_path / "tracker.db")
    (raw,) = db.execute("select manifest from release where version='2'").fetchone()
    doc = json.loads(raw)
    doc["pieces"][0] = "00" * 32
    db.execute("update release set manifest=? where version='2'", (json.dumps(doc),))
    db.commit()
    db.close()
    refused = run_client(tmp_path, tracker_url, passkey, "h1", "m@2")
    assert refused.returncode == 1
    assert "was changed" in refused.stderr
    assert store.active_version("m") == "1"
    assert not store.staging("m", "2").exists()


def test_a_torrent_whose_v2_hashes_disagree_with_the_manifest_is_refused_before_any_download(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    """libtorrent checks blocks against the torrent, so the torrent must carry the signed roots: a
    tracker serving another torrent of the same files and sizes (here v1's for v2) is caught first."""
    passkey, store = h1_on_v1_with_v2_published(tmp_path, procs, tracker_url, admin, publisher_key)

    db = sqlite3.connect(tmp_path / "tracker.db")
    (v1_torrent,) = db.execute("select torrent from release where version='1'").fetchone()
    meta: dict = lt.bdecode(v1_torrent)  # type: ignore[assignment]
    meta[b"info"][torrents.VERSION_KEY] = b"2"  # v1's files, said to be v2: only the hashes tell
    db.execute("update release set torrent=? where version='2'", (lt.bencode(meta),))
    db.commit()
    db.close()
    refused = run_client(tmp_path, tracker_url, passkey, "h1", "m@2")
    assert refused.returncode == 1
    assert "v2 root of 'w.safetensors' is not the manifest's" in refused.stderr
    assert store.active_version("m") == "1"
    assert not store.staging("m", "2").exists()


def test_a_publisher_key_the_host_does_not_trust_is_refused(
        tmp_path: Path, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    from common import signing

    publish_model(tmp_path, tracker_url, publisher_key, {"w.bin": 1000})
    other = tmp_path / "stranger.key"
    signing.generate_key(other)
    passkey = admin.add_host("h1")["passkey"]
    argv = [a if a != public_key(tmp_path) else str(other) + ".pub"
            for a in client_argv(tmp_path, tracker_url, passkey, "h1")]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60,
                            env=os.environ | {"PYTHONPATH": str(REPO)})
    assert result.returncode == 1
    assert "unknown publisher" in result.stderr
    assert ModelStore(tmp_path / "hosts" / "h1").active_version("m") is None


def test_activation_runs_the_hook_and_rollback_swaps_back_without_a_download(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    for version, seed in (("1", 1), ("2", 2)):
        publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": 1 * MiB}, version=version,
                      piece_size=256 * KiB, source=str(tmp_path / f"external-m-{version}"), seed=seed)
    seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
    for version in ("1", "2"):
        start_seedbox(procs, tmp_path, tracker_url, seedbox, f"m@{version}", name=f"seedbox-{version}")
    passkey = admin.add_host("h1")["passkey"]
    log = tmp_path / "hook.log"
    hook = f'echo "$MODELTORRENT_MODEL $MODELTORRENT_VERSION $MODELTORRENT_PATH" >> {log}'
    for version in ("1", "2"):
        done = run_client(tmp_path, tracker_url, passkey, "h1", f"m@{version}", "--on-activate", hook)
        assert done.returncode == 0, done.stderr
    store = ModelStore(tmp_path / "hosts" / "h1")
    current = store.current("m")
    assert log.read_text().splitlines() == [f"m 1 {current}", f"m 2 {current}"]

    env = os.environ | {"PYTHONPATH": str(REPO), "MODELTORRENT_CLIENT_ON_ACTIVATE": hook}
    back = subprocess.run([*CLI, "client", "rollback", "m", "--root", str(tmp_path / "hosts" / "h1")],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert back.returncode == 0, back.stderr
    assert "2 -> 1" in back.stdout
    assert os.readlink(current) == "versions/1"
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(current)
    assert log.read_text().splitlines()[-1] == f"m 1 {current}"

    failing = run_client(tmp_path, tracker_url, passkey, "h1", "m@2", "--on-activate", "exit 3")
    assert failing.returncode == 1 and "on-activate hook exited 3" in failing.stderr
    assert os.readlink(current) == "versions/2"  # the version is active; the hook's failure is reported
    reported = [r for r in httpx.get(f"{tracker_url}/api/status").json() if r["host"] == "h1" and r["version"] == "2"]
    assert "on-activate hook failed" in reported[0]["error"] and reported[0]["state"] == "activated"

    nothing = subprocess.run([*CLI, "client", "rollback", "other", "--root", str(tmp_path / "hosts" / "h1")],
                             capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert nothing.returncode == 1 and "no other version of other" in nothing.stderr


def test_low_priority_marks_the_hosts_packets_by_flag_or_by_marker_file(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.system import require_debian_package

    tcpdump = require_debian_package("tcpdump", "tcpdump")
    publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": 2 * MiB}, piece_size=256 * KiB,
                  source=str(tmp_path / "external-m-1"))
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", role="seedbox")["passkey"])

    def marked_packets(host: str, *extra: str) -> int:
        """Packets on loopback whose DSCP is CS1 (TOS byte 0x20) while ``host`` fetches."""
        capture = tmp_path / f"{host}.pcap"
        dump = subprocess.Popen([tcpdump, "-i", "lo", "-nn", "-U", "-w", str(capture),
                                 "ip and tcp and (ip[1] & 0xfc) == 0x20"], stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: capture.exists(), 10, "tcpdump to start")
            time.sleep(0.5)
            done = run_client(tmp_path, tracker_url, admin.add_host(host)["passkey"], host, "m@1", *extra)
            assert done.returncode == 0, done.stderr
            time.sleep(0.5)
        finally:
            dump.terminate()
            dump.wait(timeout=10)
        read = subprocess.run([tcpdump, "-nn", "-r", str(capture)], capture_output=True, text=True, check=True)
        return len(read.stdout.splitlines())

    assert marked_packets("normal") == 0
    assert marked_packets("flagged", "--low-priority") > 0
    marker = subprocess.run([*CLI, "client", "priority", "low", "--root", str(tmp_path / "hosts" / "serving")],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert marker.returncode == 0, marker.stderr
    assert marked_packets("serving") > 0


def test_a_seedbox_restarted_empty_reads_first_what_no_host_holds(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    piece, pieces = 256 * KiB, 48
    origin = start_origin(procs, tmp_path)
    publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": pieces * piece}, piece_size=piece,
                  source=f"{origin}/external-m-1")
    seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
    # Slow ingress: the seedbox reads in index order and host h1 follows it.
    start_seedbox(procs, tmp_path, tracker_url, seedbox, extra=("--ingress-rate", "1MiB"),
                  env={"MODELTORRENT_LOG": "INFO"})
    procs.start("client", client_argv(tmp_path, tracker_url, admin.add_host("h1")["passkey"], "h1", "m@1",
                                      "--seed-for", "-1"), env={"MODELTORRENT_CLIENT_RESUME_INTERVAL": "0.5"})
    sidecar = tmp_path / "hosts" / "h1" / "m" / "state" / "1.verified.json"
    wait_until(lambda: sidecar.exists() and len(json.loads(sidecar.read_text())["pieces"]) >= 16, 90,
               "host h1 holding a third of the model")
    procs.stop("seedbox", signal.SIGKILL)
    first_log = procs.log("seedbox")
    assert "no host holds a piece of m@1 yet: reading at once" in first_log  # a fresh publish: no wait
    shutil.rmtree(tmp_path / "seedbox")  # a new seedbox: nothing on its disk
    time.sleep(1.5)  # h1's last pieces from the old seedbox verified and saved
    held = set(json.loads(sidecar.read_text())["pieces"])
    before = len(httpx.get(f"{origin}/_stats").json()["reads"])

    start_seedbox(procs, tmp_path, tracker_url, seedbox, env={"MODELTORRENT_LOG": "INFO"})
    status = tmp_path / "seedbox" / "status" / "m@1.json"
    wait_until(lambda: status.exists() and json.loads(status.read_text())["state"] == "seeding", 90,
               "the new seedbox holding the whole model")
    wait_until(lambda: (tmp_path / "hosts" / "h1" / "m" / "current").exists(), 90, "h1 activating the model")
    order = [start // piece for _, start in httpx.get(f"{origin}/_stats").json()["reads"][before:]]
    lacked = set(range(pieces)) - held
    assert lacked <= set(order) and len(order) == len(set(order))  # each piece read at most once
    # What h1 lacked was read first (four reads in flight may overlap the turn); what it held was
    # read last, or not at all: the new seedbox downloads from h1 what h1 holds.
    assert not held & set(order[:len(lacked) - 4]), (sorted(held), order)
    assert "reading at once" not in procs.log("seedbox")[len(first_log):]  # h1 said it holds pieces
    final = json.loads(status.read_text())
    assert final["pieces_done"] == pieces
    assert final["pieces_from_swarm"] == pieces - len(order)
    assert final["bytes_read_from_source"] == len(order) * piece


def test_a_source_failing_half_its_reads_slows_the_ingest_but_does_not_end_it(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    """No retries within a read (FETCH_RETRIES 0) and every second request a 503: a piece whose
    read failed is asked again (source_patience) instead of ending the ingest (seen in the soak:
    four 503s in a row on one piece stopped the seedbox)."""
    piece = 256 * KiB
    origin = start_origin(procs, tmp_path, fail_every=2)
    publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": 12 * piece}, piece_size=piece,
                  source=f"{origin}/external-m-1")
    seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
    start_seedbox(procs, tmp_path, tracker_url, seedbox, env={"MODELTORRENT_SEEDBOX_FETCH_RETRIES": "0"})
    status = tmp_path / "seedbox" / "status" / "m@1.json"
    wait_until(lambda: status.exists() and json.loads(status.read_text())["state"] == "seeding", 120,
               "the seedbox seeding")
    assert httpx.get(f"{origin}/_stats").json()["failed"] >= 5
    assert "asking again" in procs.log("seedbox")
    done = run_client(tmp_path, tracker_url, admin.add_host("h1")["passkey"], "h1")
    assert done.returncode == 0, done.stderr
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))


@pytest.mark.parametrize("parts", [1, 4], ids=["whole-pieces", "4-parts-a-piece"])
def test_a_seedbox_killed_mid_ingest_reads_again_only_what_was_not_on_its_disk(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path, parts: int) -> None:  # type: ignore[no-untyped-def]
    piece, pieces = 256 * KiB, 48
    origin = start_origin(procs, tmp_path, fail_every=5)  # and every 5th read fails: retried with backoff
    publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": pieces * piece}, piece_size=piece,
                  source=f"{origin}/external-m-1")
    seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
    # Parts: each piece read by the 4 lanes at once, a quarter each (seedbox/parts.py).
    env = {"MODELTORRENT_SEEDBOX_READ_PART_MIN": str(piece // parts)}
    start_seedbox(procs, tmp_path, tracker_url, seedbox, env=env, extra=("--ingress-rate", "1MiB"))
    status = tmp_path / "seedbox" / "status" / "m@1.json"
    wait_until(lambda: status.exists() and json.loads(status.read_text())["pieces_done"] >= 16, 90,
               "a third of the model ingested")
    procs.stop("seedbox", signal.SIGKILL)
    reads_before = len(httpx.get(f"{origin}/_stats").json()["reads"])
    spool = {p.name: p.stat().st_size for p in (tmp_path / "seedbox" / "spool" / "m" / "1").iterdir()}

    start_seedbox(procs, tmp_path, tracker_url, seedbox, env=env)
    wait_until(lambda: json.loads(status.read_text())["state"] == "seeding", 90, "the restarted seedbox seeding")
    final = json.loads(status.read_text())
    on_disk = final["pieces_found_on_disk"]
    assert 16 <= on_disk < pieces
    stats = httpx.get(f"{origin}/_stats").json()
    again = {start // piece for _, start in stats["reads"][reads_before:]}
    # What was on the seedbox's disk was not read again; nor what was in flight at the kill (read
    # but not yet written: spooled; a read cut short goes on from where it stopped).
    assert len(again) <= pieces - on_disk
    spooled = pieces - on_disk - len(again)
    print(f"{on_disk} pieces on disk, {spooled} whole in the spool ({spool}), source sent "
          f"{stats['bytes_sent'] - pieces * piece:+d} bytes beyond the model")
    # Beyond the model: only what sat in the sockets at the kill (sent, never received). Below it
    # by at most what the killed reader's kernel had received but not yet acknowledged when its RST
    # went out: the origin counts acknowledged bytes, and handed every byte to a socket.
    assert stats["bytes_written"] >= pieces * piece
    assert pieces * piece - 256 * KiB <= stats["bytes_sent"] <= pieces * piece + piece
    assert final["bad_pieces"] == 0 and final["pieces_done"] == pieces
    done = run_client(tmp_path, tracker_url, admin.add_host("h1")["passkey"], "h1")
    assert done.returncode == 0, done.stderr
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))


def h1_on_version_1(tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path,  # type: ignore[no-untyped-def]
                    sizes: tuple[int, int], piece: int) -> tuple[str, str]:
    """Versions 1 and 2 of model m published (one file each, of ``sizes``), a seedbox seeding
    version 1 and host h1 holding it active; returns (h1's passkey, the seedbox's)."""
    for version, size in zip(("1", "2"), sizes, strict=True):
        publish_model(tmp_path, tracker_url, publisher_key, {"w.safetensors": size}, version=version,
                      piece_size=piece, source=str(tmp_path / f"external-m-{version}"), seed=int(version))
    seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
    start_seedbox(procs, tmp_path, tracker_url, seedbox)
    passkey = admin.add_host("h1")["passkey"]
    assert run_client(tmp_path, tracker_url, passkey, "h1").returncode == 0
    return passkey, seedbox


def test_too_little_disk_is_refused_before_anything_is_written_and_the_active_version_stays(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    passkey, _ = h1_on_version_1(tmp_path, procs, tracker_url, admin, publisher_key, (MiB, MiB), 256 * KiB)
    # A reserve larger than any disk: the free space check must refuse version 2 up front.
    env = os.environ | {"PYTHONPATH": str(REPO), "MODELTORRENT_CLIENT_DISK_RESERVE": str(1 << 60)}
    refused = subprocess.run(client_argv(tmp_path, tracker_url, passkey, "h1", "m@2"), capture_output=True,
                             text=True, timeout=120, cwd=REPO, env=env)
    assert refused.returncode == 1
    assert "not enough disk space for m@2" in refused.stderr and "active model was not touched" in refused.stderr
    store = ModelStore(tmp_path / "hosts" / "h1")
    assert os.readlink(store.current("m")) == "versions/1"
    assert not store.staging("m", "2").exists() and not store.version_dir("m", "2").exists()


def test_a_disk_that_fills_up_mid_download_fails_it_cleanly_and_the_active_version_stays(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real full disk: the host's root is a small tmpfs that another writer fills while version 2
    downloads (the free-space check passed before it started)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        skip_or_fail("mounting a tmpfs needs root and mount(8)")
    monkeypatch.setenv("MODELTORRENT_CLIENT_DISK_RESERVE", "0")  # the disk is tiny; the check is not the point
    root = tmp_path / "hosts" / "h1"
    root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], check=True)
    try:
        passkey, seedbox = h1_on_version_1(tmp_path, procs, tracker_url, admin, publisher_key, (MiB, 2 * MiB),
                                           128 * KiB)
        start_seedbox(procs, tmp_path, tracker_url, seedbox, "m@2", extra=("--ingress-rate", "256KiB"), name="seedbox2")
        procs.start("h1", client_argv(tmp_path, tracker_url, passkey, "h1", "m@2"))
        staging = ModelStore(root).staging("m", "2")
        wait_until(lambda: any(p.is_file() and p.stat().st_blocks for p in staging.rglob("*")) if staging.exists()
                   else False, 60, "version 2's first pieces on the host's disk")
        free = shutil.disk_usage(root).free
        with contextlib.suppress(OSError), open(root / "filler", "wb") as filler:  # another writer takes the rest
            filler.write(b"\0" * free)
        code = procs.procs["h1"].wait(timeout=120)
        log = procs.log("h1")
        assert code == 1, log
        assert "No space left on device" in log or "no space" in log.lower(), log
        store = ModelStore(root)
        assert os.readlink(store.current("m")) == "versions/1"
        admin.manifest("m", "1").verify_data(store.current("m"))  # the active version is whole and correct
        rows = [r for r in admin.status("m") if r["host"] == "h1" and r["version"] == "2"]
        assert rows and "space" in rows[0]["error"].lower(), rows  # the host's status says why
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))


@pytest.mark.parametrize("stripes", [1, 2])
def test_a_new_version_downloads_only_the_pieces_it_does_not_share_with_the_one_on_the_host(
        tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path,  # type: ignore[no-untyped-def]
        stripes: int) -> None:
    from tests.conftest import write_model
    from tools.cli.publish import publish

    piece = 256 * KiB
    v1 = write_model(tmp_path / "external-m-1", {"a.safetensors": 2 * MiB, "b.safetensors": MiB + 5,
                                                 "config.json": 300})
    v2 = tmp_path / "external-m-2"
    shutil.copytree(v1, v2)
    with open(v2 / "a.safetensors", "r+b") as f:  # a fine-tune: two pieces of one shard change
        for offset in (300 * KiB, 3 * piece + 10):
            f.seek(offset)
            f.write(b"\xff" * 64)
    (v2 / "config.json").write_text('{"fine_tuned": true}')
    changed = 2 * piece + (v2 / "config.json").stat().st_size
    for version, model in (("1", v1), ("2", v2)):
        publish(model, name="m", version=version, key_path=publisher_key, source=str(model), piece_size=piece,
                tracker=tracker_url, admin_token=ADMIN, out_dir=tmp_path / "out", stripes=stripes)
    seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
    for version in ("1", "2"):
        start_seedbox(procs, tmp_path, tracker_url, seedbox, f"m@{version}", name=f"seedbox-{version}")
    passkey = admin.add_host("h1")["passkey"]
    first = run_client(tmp_path, tracker_url, passkey, "h1", "m@1")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.splitlines()[-1])["pieces_reused"] == 0

    second = run_client(tmp_path, tracker_url, passkey, "h1", "m@2")
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout.splitlines()[-1])
    manifest = Manifest.from_json((tmp_path / "out" / "m-2.manifest.json").read_bytes())
    assert result["pieces_reused"] == len(manifest.pieces) - 3
    # Only the three changed pieces crossed the network (libtorrent's payload counter).
    assert changed <= result["bytes_downloaded"] <= changed + 16 * KiB
    store = ModelStore(tmp_path / "hosts" / "h1")
    manifest.verify_data(store.current("m"))  # every piece, independently of the client
    assert os.readlink(store.current("m")) == "versions/2"
