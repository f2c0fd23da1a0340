"""Tracker contract over real HTTP: a real uvicorn process, raw percent-encoded bytes."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import quote_from_bytes

import bencode
import httpx
import libtorrent as lt
import pytest

from common import torrent as torrents
from tests.conftest import ADMIN, both_databases, publish_model

PS = 64 * 1024
FILES = {"a.safetensors": 3 * PS + 11, "b/config.json": 200}



@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test here runs against SQLite and against a real PostgreSQL server."""
    return both_databases(request, tmp_path)

@pytest.fixture
def world(tmp_path: Path, tracker_url: str, admin, publisher_key: Path) -> dict:  # type: ignore[no-untyped-def]
    release = publish_model(tmp_path, tracker_url, publisher_key, FILES, torrent_format="hybrid")
    hosts = {n: admin.add_host(n, f"dc1|pod1|{r}")["passkey"] for n, r in
             [("h1", "r1"), ("h2", "r1"), ("h3", "r2")]}
    return {"url": tracker_url, "release": release, "hosts": hosts}


_raw = bencode.Bencode(encoding=None)


def bdecode(body: bytes) -> dict:
    """Keys as text, byte strings as bytes; ``failure reason`` as text."""

    def conv(value):  # type: ignore[no-untyped-def]
        if isinstance(value, dict):
            return {(k.decode() if isinstance(k, bytes) and len(k) != 20 else k): conv(v) for k, v in value.items()}
        if isinstance(value, list):
            return [conv(v) for v in value]
        return value

    out = conv(_raw.decode(body))
    if "failure reason" in out:
        out["failure reason"] = out["failure reason"].decode()
    return out


def announce(url: str, passkey: str | None, info_hash: bytes, peer_id: bytes, port: int, **extra: str) -> dict:
    qs = f"info_hash={quote_from_bytes(info_hash)}&peer_id={quote_from_bytes(peer_id)}&port={port}" \
         f"&uploaded=0&downloaded=0&left={extra.pop('left', '100')}&compact={extra.pop('compact', '1')}"
    if passkey:
        qs = f"passkey={passkey}&" + qs
    for k, v in extra.items():
        qs += f"&{k}={v}"
    response = httpx.get(f"{url}/announce?{qs}")
    assert response.status_code == 200
    return bdecode(response.content)


def pid(n: int) -> bytes:
    return b"-MT0100-" + bytes([0xFF, 0x2B, n]) + b"\x00" * 9  # invalid UTF-8 and a '+'


def test_a_v2_only_torrent_is_one_swarm_under_its_truncated_v2_hash(
        tmp_path: Path, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    release = publish_model(tmp_path, tracker_url, publisher_key, FILES, name="v", torrent_format="v2")
    assert release["info_hash_v1"] is None
    keys = [admin.add_host(f"v{i}", "dc1|pod1|r1")["passkey"] for i in range(2)]
    v2 = bytes.fromhex(release["info_hash_v2"])
    assert announce(tracker_url, keys[0], v2, pid(1), 7001, event="started")["incomplete"] == 0
    second = announce(tracker_url, keys[1], v2, pid(2), 7002, event="started")
    assert second["peers"] == bytes([127, 0, 0, 1]) + (7001).to_bytes(2, "big")
    listing = bdecode(httpx.get(f"{tracker_url}/scrape?passkey={keys[0]}").content)
    assert listing["files"][v2]["incomplete"] == 2  # a scrape of everything names it by its v2 hash


def test_should_hand_out_peers_of_one_swarm_for_both_hybrid_hashes(world: dict) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    v2 = bytes.fromhex(world["release"]["info_hash_v2"])
    keys = world["hosts"]
    first = announce(world["url"], keys["h1"], v1, pid(1), 7001, event="started")
    assert first["peers"] == b"" and first["incomplete"] == 0  # never the asker itself
    second = announce(world["url"], keys["h2"], v2, pid(2), 7002, event="started")
    assert second["peers"] == bytes([127, 0, 0, 1]) + (7001).to_bytes(2, "big")
    assert second["incomplete"] == 1
    # h1 announcing again under the v2 hash is the same peer, not a second one
    again = announce(world["url"], keys["h1"], v2, pid(1), 7001)
    assert again["peers"] == bytes([127, 0, 0, 1]) + (7002).to_bytes(2, "big")
    assert 0.5 * 2 <= again["interval"] <= 1.5 * 2


def test_seeds_should_be_counted_and_stopped_peers_removed(world: dict) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    keys = world["hosts"]
    announce(world["url"], keys["h1"], v1, pid(1), 7001, left="0", event="completed")
    third = announce(world["url"], keys["h3"], v1, pid(3), 7003)
    assert third["complete"] == 1 and third["incomplete"] == 0
    announce(world["url"], keys["h1"], v1, pid(1), 7001, left="0", event="stopped")
    assert announce(world["url"], keys["h3"], v1, pid(3), 7003)["peers"] == b""
    scrape = httpx.get(f"{world['url']}/scrape?passkey={keys['h3']}&info_hash={quote_from_bytes(v1)}")
    files = bdecode(scrape.content)["files"]
    assert list(files.values()) == [{"complete": 0, "downloaded": 1, "incomplete": 1}]


@pytest.mark.parametrize("case,expected", [
    ("unknown passkey", b"unknown passkey"),
    ("no passkey", b"missing passkey"),
    ("unregistered torrent", b"unregistered torrent"),
    ("19-byte hash", b"invalid info_hash"),
])
def test_should_refuse_with_a_bencoded_failure_reason(world: dict, case: str, expected: bytes) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    passkey = {"unknown passkey": "nope", "no passkey": None}.get(case, world["hosts"]["h1"])
    info_hash = {"unregistered torrent": b"\xee" * 20, "19-byte hash": v1[:19]}.get(case, v1)
    body = announce(world["url"], passkey, info_hash, pid(1), 7001)
    assert list(body) == ["failure reason"]
    assert expected in body["failure reason"].encode()


@pytest.mark.parametrize("raw", [
    "", "passkey=x", "info_hash=%", "info_hash=%ZZ&passkey=%80", "port=-5&passkey=a",
    "passkey=a&info_hash=" + "%00" * 20 + "&peer_id=" + "%00" * 20 + "&port=99999999999999999999999",
    "passkey=a&passkey=b", "%80%81=1",
])
def test_malformed_announces_never_get_a_500(world: dict, raw: str) -> None:
    response = httpx.get(f"{world['url']}/announce?{raw}")
    assert response.status_code == 200
    assert b"failure reason" in response.content


def test_an_announce_flood_from_one_host_is_refused_without_affecting_others(world: dict) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    keys = world["hosts"]
    started = time.monotonic()
    answers = [announce(world["url"], keys["h1"], v1, pid(1), 7001) for _ in range(100)]
    took = time.monotonic() - started
    refused = [a for a in answers if "failure reason" in a]
    # A burst of 30 and 2 a second after it: of a hundred in a row, 70 less what the refill allowed.
    assert 70 - 2 * took - 1 <= len(refused) <= 70, (len(refused), took)
    assert all("announcing too often" in a["failure reason"] for a in refused)
    assert "peers" in answers[0]
    other = announce(world["url"], keys["h2"], v1, pid(2), 7002)  # another host is not held back
    assert "failure reason" not in other and other["peers"] == bytes([127, 0, 0, 1]) + (7001).to_bytes(2, "big")


def test_scrape_should_reveal_nothing_to_strangers(world: dict) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    for qs in (f"info_hash={quote_from_bytes(v1)}", f"passkey=stranger&info_hash={quote_from_bytes(v1)}", ""):
        body = bdecode(httpx.get(f"{world['url']}/scrape?{qs}").content)
        assert list(body) == ["failure reason"]


def test_revoked_host_is_refused_at_its_next_announce(world: dict) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    assert "peers" in announce(world["url"], world["hosts"]["h1"], v1, pid(1), 7001)
    httpx.delete(f"{world['url']}/api/hosts/h1", headers={"Authorization": f"Bearer {ADMIN}"}).raise_for_status()
    body = announce(world["url"], world["hosts"]["h1"], v1, pid(1), 7001)
    assert body == {"failure reason": "this host's passkey was revoked"}


def test_torrent_for_a_host_carries_its_passkey_and_the_same_info_hashes(world: dict) -> None:
    key = world["hosts"]["h2"]
    response = httpx.get(f"{world['url']}/api/torrents/m/1/torrent", headers={"X-Passkey": key})
    assert response.status_code == 200
    meta = lt.bdecode(response.content)
    assert meta[b"announce"] == f"{world['url']}/announce?passkey={key}".encode()
    hashes = torrents.info_hashes(response.content)
    assert hashes.v1 == world["release"]["info_hash_v1"]
    assert hashes.v2_truncated == world["release"]["info_hash_v2"]
    assert httpx.get(f"{world['url']}/api/torrents/m/1/torrent").status_code == 401


def test_admin_endpoints_require_the_admin_token(world: dict) -> None:
    url = world["url"]
    assert httpx.post(f"{url}/api/hosts", json={"name": "x"}).status_code == 401
    assert httpx.post(f"{url}/api/hosts", json={"name": "x"},
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{url}/api/hosts", headers={"X-Passkey": world["hosts"]["h1"]}).status_code == 401
    assert httpx.get(f"{url}/api/torrents/m/1/manifest").status_code == 401


def test_host_registration_is_idempotent(world: dict, admin) -> None:  # type: ignore[no-untyped-def]
    again = admin.add_host("h1", "dc1|pod1|r1")
    assert again["passkey"] == world["hosts"]["h1"] and again["created"] is False


def test_republishing_a_version_with_other_bytes_is_refused(world: dict, tmp_path: Path,
                                                            publisher_key: Path) -> None:
    from common.errors import ApiError, ModeltorrentError

    with pytest.raises(ModeltorrentError, match="m@1 is already published") as early:
        publish_model(tmp_path / "again", world["url"], publisher_key, FILES, torrent_format="hybrid")
    assert "--republish" in (early.value.hint or "")
    assert not (tmp_path / "again" / "out").exists()  # refused before hashing, nothing written
    same = publish_model(tmp_path / "again", world["url"], publisher_key, FILES, torrent_format="hybrid",
                         republish=True)
    assert same == world["release"]  # same bytes: idempotent, the first record stands
    with pytest.raises(ApiError, match="409.*already published with other contents"):
        publish_model(tmp_path / "other", world["url"], publisher_key, FILES, seed=2, torrent_format="hybrid",
                      republish=True)


def test_the_same_bytes_published_as_a_new_version_are_a_swarm_of_their_own(
        world: dict, tmp_path: Path, publisher_key: Path) -> None:
    again = publish_model(tmp_path / "v2", world["url"], publisher_key, FILES, version="2", torrent_format="hybrid")
    first = world["release"]
    assert (again["name"], again["version"]) == ("m", "2")
    ours = [json.loads((tmp_path / d / "out" / f"m-{v}.manifest.json").read_text())["pieces"]
            for d, v in (("", "1"), ("v2", "2"))]
    assert ours[0] == ours[1]  # the same bytes...
    assert again["info_hash_v2"] != first["info_hash_v2"] and again["info_hash_v1"] != first["info_hash_v1"]
    meta = lt.bdecode((tmp_path / "v2" / "out" / "m-2.torrent").read_bytes())
    assert meta[b"info"][torrents.VERSION_KEY] == b"2"


def test_a_torrent_without_its_version_whose_bytes_are_published_gets_409_not_500(
        world: dict, tmp_path: Path, publisher_key: Path) -> None:
    """Torrents made as modeltorrent made them before the version went into the info dict."""
    from common import signing
    from common.hashing import hash_tree
    from common.layout import plan
    from common.manifest import Manifest
    from tools.cli.publish import scan

    root, files = scan(tmp_path / "external-m-1")
    layout = plan(files, 64 * 1024)
    digests = hash_tree(root, layout, v1=True)

    def register(version: str) -> httpx.Response:
        manifest = Manifest.create(name="m", version=version, layout=layout, digests=digests,
                                   key=signing.load_private_key(publisher_key), source=root.as_uri())
        old_style = torrents.build(layout, digests, "m", torrent_format="hybrid")
        return httpx.post(f"{world['url']}/api/torrents", headers={"Authorization": f"Bearer {ADMIN}"},
                          json={"manifest": json.loads(manifest.to_json()),
                                "torrent": base64.b64encode(old_style).decode()})

    assert register("old").status_code == 201
    response = register("older")
    assert response.status_code == 409
    assert "m@old" in response.json()["detail"] and "version is not in the torrent" in response.json()["detail"]


def test_registering_a_torrent_that_disagrees_with_its_manifest_is_refused(world: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = (out / "m-1.manifest.json").read_text()
    other = publish_model(tmp_path / "o", world["url"], tmp_path / "keys" / "publisher.key",
                          {"a.safetensors": 10}, name="other")
    assert other["name"] == "other"
    wrong_torrent = (tmp_path / "o" / "out" / "other-1.torrent").read_bytes()
    response = httpx.post(f"{world['url']}/api/torrents", headers={"Authorization": f"Bearer {ADMIN}"},
                          json={"manifest": __import__("json").loads(manifest),
                                "torrent": base64.b64encode(wrong_torrent).decode()})
    assert response.status_code == 422
    assert "refused" in response.json()["detail"]


def test_metrics_count_announces_by_result_and_swarm_sizes(world: dict) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    announce(world["url"], world["hosts"]["h1"], v1, pid(1), 7001)
    announce(world["url"], "nope", v1, pid(1), 7001)
    text = httpx.get(f"{world['url']}/metrics").text
    assert 'modeltorrent_announces_total{result="ok"} 1.0' in text
    assert 'modeltorrent_announces_total{result="refused"} 1.0' in text
    assert 'modeltorrent_swarm_leechers{torrent="m@1"} 1.0' in text
    assert "modeltorrent_request_seconds_bucket" in text


def test_openapi_documents_the_admin_api(world: dict) -> None:
    spec = httpx.get(f"{world['url']}/openapi.json").json()
    documented = {"/api/hosts", "/api/torrents", "/api/torrents/{name}/{version}/torrent", "/api/status"}
    assert documented <= set(spec["paths"])


def test_a_literal_plus_in_the_query_is_a_byte_not_a_space(world: dict) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    keys = world["hosts"]
    raw_plus_id = "-MT0100-" + "+" * 12  # sent unencoded: '+' must stay 0x2B
    qs = (f"passkey={keys['h1']}&info_hash={quote_from_bytes(v1)}&peer_id={raw_plus_id}"
          "&port=7001&uploaded=0&downloaded=0&left=5")
    assert "peers" in bdecode(httpx.get(f"{world['url']}/announce?{qs}").content)
    listing = announce(world["url"], keys["h2"], v1, pid(2), 7002, compact="0")
    assert listing["peers"] == [{"ip": b"127.0.0.1", "peer id": raw_plus_id.encode(), "port": 7001}]


def test_counters_of_a_500_gb_model_fit(world: dict) -> None:
    v1 = bytes.fromhex(world["release"]["info_hash_v1"])
    big = str(500 * 10**9)
    announce(world["url"], world["hosts"]["h1"], v1, pid(1), 7001, left=big)
    body = announce(world["url"], world["hosts"]["h2"], v1, pid(2), 7002, left="0")
    assert body["incomplete"] == 1


@pytest.fixture
def workers_world(tmp_path: Path, procs, db_url: str, publisher_key: Path) -> dict:  # type: ignore[no-untyped-def]
    from tools.demo.procs import start_tracker
    from tracker.api_client import TrackerClient

    url = start_tracker(procs, db_url, ADMIN, interval=2, name="tracker-workers", workers=3)
    release = publish_model(tmp_path, url, publisher_key, FILES, torrent_format="hybrid")
    with TrackerClient(url, admin_token=ADMIN) as admin:
        hosts = {f"w{i}": admin.add_host(f"w{i}", "dc1|pod1|r1")["passkey"] for i in range(12)}
    return {"url": url, "release": release, "hosts": hosts}


def test_several_workers_share_one_swarm(workers_world: dict) -> None:
    url, keys = workers_world["url"], workers_world["hosts"]
    v1 = bytes.fromhex(workers_world["release"]["info_hash_v1"])
    for i, name in enumerate(keys):  # new connections: the requests spread over the workers
        announce(url, keys[name], v1, pid(i), 8000 + i)
    # Each worker sees the others' peers within about a second (view refresh + write-behind).
    deadline, sent = time.monotonic() + 10, 12
    while True:
        last = announce(url, keys["w0"], v1, pid(0), 8000, numwant="50")
        sent += 1
        if last["incomplete"] == 11 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert last["incomplete"] == 11 and len(last["peers"]) == 11 * 6, last
    text = httpx.get(f"{url}/metrics").text
    assert f'modeltorrent_announces_total{{result="ok"}} {sent}.0' in text  # summed over every worker
    assert 'modeltorrent_swarm_leechers{torrent="m@1"} 12.0' in text


def test_several_workers_leave_no_metrics_directory_behind(tmp_path: Path, procs, db_url: str) -> None:  # type: ignore[no-untyped-def]
    from tools.demo.procs import start_tracker

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    start_tracker(procs, db_url, ADMIN, name="tracker-workers", workers=2, env={"TMPDIR": str(scratch)})
    assert [p.name for p in scratch.iterdir()][0].startswith("modeltorrent-metrics-")  # fresh, for this run
    assert procs.stop("tracker-workers") == 0
    assert not list(scratch.iterdir())


def test_a_striped_release_is_one_version_whose_stripes_are_swarms_of_their_own(
        tmp_path: Path, tracker_url: str, admin, publisher_key: Path) -> None:  # type: ignore[no-untyped-def]
    release = publish_model(tmp_path, tracker_url, publisher_key, FILES, name="s", torrent_format="v2", stripes=3)
    assert release["stripes"] == 3
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert [r["name"] for r in httpx.get(f"{tracker_url}/api/torrents", headers=auth).json()] == ["s"]
    assert httpx.get(f"{tracker_url}/api/torrents/s/1", headers=auth).json()["stripes"] == 3
    torrent = (tmp_path / "out" / "s-1.torrent").read_bytes()
    hashes = [bytes.fromhex(torrents.info_hashes(torrents.stripe_torrent(torrent, k, 3)).v2_truncated or "")
              for k in range(3)]
    a, b = (admin.add_host(f"s{i}", "dc1|pod1|r1")["passkey"] for i in range(2))
    # Each stripe is a swarm: b hears of a in the stripe both announced in, of nobody in the others.
    announce(tracker_url, a, hashes[0], pid(1), 7001, event="started")
    assert announce(tracker_url, b, hashes[0], pid(2), 7002, event="started")["incomplete"] == 1
    assert announce(tracker_url, b, hashes[1], pid(2), 7002, event="started")["incomplete"] == 0
    # The page counts a striped version's hosts over its stripes, each once.
    swarms = {s["torrent"]: s for s in httpx.get(f"{tracker_url}/api/overview").json()["swarms"]}
    assert swarms["s@1"]["leechers"] == 2 and swarms["s@1"]["seeders"] == 0
    # More stripes than a host would run torrents for: refused.
    body = {"manifest": json.loads((tmp_path / "out" / "s-1.manifest.json").read_text()),
            "torrent": base64.b64encode(torrent).decode(), "stripes": 10_000}
    refused = httpx.post(f"{tracker_url}/api/torrents", json=body, headers=auth)
    assert refused.status_code == 422
