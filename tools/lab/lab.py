"""An emulated datacenter on one machine, and one model distributed through it.

    lab = Lab(Topology(racks=2, hosts_per_rack=3, nic_mbit=200, uplink_mbit=100, ingress_mbit=50))
    with lab:
        result = lab.distribute(size=64 * MiB)

``python -m tools.lab up`` builds the network and waits (Ctrl-C tears it down). The network comes
from ``topology.py`` (built with ``netns.py``); every process runs in its host's namespace with its
own address, as the CLI runs it. ``distribute`` publishes a generated model, starts the seedbox and
one ``client fetch`` per host at once, injects ``faults.py``'s faults if asked, and measures
(``measure.py``): time to every host activated, the physical limit ``T_min`` for the topology
(``tools/sim/physics.py``), bytes read from external storage and bytes that crossed rack uplinks,
per-host completion times, and how busy the CPUs were.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from common import signing
from tools.demo.modelgen import generate_model
from tools.demo.procs import CLI, REPO, Procs
from tools.lab.measure import CpuMeter, Result, Sample
from tools.lab.netns import Host
from tools.lab.topology import Datacenter, Topology
from tracker.models import stripe_version
from tracker.peers import stripe_gateways

if TYPE_CHECKING:
    from tools.lab.faults import Fault

PORT_TRACKER, PORT_ORIGIN = 8000, 9000


INTERVAL = 5  # the tracker's announce interval in the lab, s
PIECE = 1 << 20  # the torrents' piece size in the lab: tens of pieces for a model of tens of MiB


class Lab:
    def __init__(self, topology: Topology, workdir: Path | None = None, env: dict[str, str] | None = None,
                 trackers: int = 1) -> None:
        """``env``: settings for every process in the lab (e.g. ``MODELTORRENT_CLIENT_UPLOAD_SLOTS``).
        ``trackers``: more than one is a failover pair (or more) on one database, which must then be
        a server they all reach: set ``db_url`` before the services start."""
        self.topology = topology
        self.workdir = (workdir or Path(tempfile.mkdtemp(prefix="modeltorrent-lab-"))).resolve()
        self.procs = Procs(self.workdir / "logs", env=dict(env or {}))
        self.token = secrets.token_hex(16)
        self.env = os.environ | self.procs.env | {"PYTHONPATH": str(REPO), "MODELTORRENT_ADMIN_TOKEN": self.token}
        dc = Datacenter.build(topology)
        self.fabric, self.storage, self.tracker, self.seedbox = dc.fabric, dc.storage, dc.tracker, dc.seedbox
        self.clients, self.rack_of, self.bridges = dc.clients, dc.rack_of, dc.bridges
        self.trackers = [self.tracker] + [self.fabric.host(f"tracker{i + 1}") for i in range(1, trackers)]
        self.tracker_urls = [f"http://{t.ip}:{PORT_TRACKER}" for t in self.trackers]
        self.tracker_url = ",".join(self.tracker_urls)  # every client and CLI fails over along it
        self.db_url: str | None = None  # None: SQLite in the workdir (one tracker)
        self.tracker_env: dict[str, str] = {}
        self.origin_args: list[str] = []  # e.g. ["--fail-every", "7"]: external storage's faults (tools/demo/origin.py)
        self.argv: dict[str, list[str]] = {}  # each service's command line, to restart it after a fault
        self.gone: set[str] = set()  # hosts a fault took down for good: not waited for

    # -- running things in hosts --------------------------------------------------------------

    def cli(self, host: Host, *argv: str, timeout: float = 300) -> str:
        done = subprocess.run(host.argv(*CLI, *argv), capture_output=True, text=True, cwd=REPO, env=self.env,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} on {host.name} failed: {done.stderr[-2000:]}")
        return done.stdout

    def wait_for(self, ready: Any, what: str, timeout: float = 120) -> None:
        """Until ``ready()``; TimeoutError naming ``what`` and where the logs are."""
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what} (logs in {self.procs.log_dir})")
            time.sleep(0.2)

    def _answers(self, host: Host, url: str) -> bool:
        probe = [CLI[0], "-c", f"import httpx; httpx.get({url!r}, timeout=2).raise_for_status()"]
        return subprocess.run(host.argv(*probe), capture_output=True, env=self.env).returncode == 0

    def start_services(self, model: Path, tracker_env: dict[str, str] | None = None) -> None:
        """The origin (serving ``model``'s parent folder), the tracker."""
        self.procs.start("origin", self.storage.argv(CLI[0], "-m", "tools.demo.origin", "--root", str(model.parent),
                                                     "--host", "0.0.0.0", "--port", str(PORT_ORIGIN),
                                                     *self.origin_args))
        if len(self.trackers) > 1 and self.db_url is None:
            raise ValueError("a failover pair needs a database both trackers reach: set Lab.db_url")
        db = self.db_url or f"sqlite:///{self.workdir / 'tracker.db'}"
        env = {"MODELTORRENT_ADMIN_TOKEN": self.token} | (tracker_env or {})
        if len(self.trackers) > 1:  # the torrents list every tracker, a tier each (BEP 12)
            env["MODELTORRENT_TRACKER_PUBLIC_URL"] = self.tracker_url
        self.tracker_env = env  # to restart one (tools/lab/faults.py)
        for host in self.trackers:
            self.argv[host.name] = host.argv(*CLI, "tracker", "serve", "--host", "0.0.0.0", "--port",
                                             str(PORT_TRACKER), "--db", db, "--interval", str(INTERVAL))
            self.procs.start(host.name, self.argv[host.name], env=env)
        for host, url in zip(self.trackers, self.tracker_urls, strict=True):
            self.wait_for(lambda h=host, u=url: self._answers(h, f"{u}/healthz"), f"the tracker on {host.name}")
        stats = f"http://{self.storage.ip}:{PORT_ORIGIN}/_stats"
        self.wait_for(lambda: self._answers(self.storage, stats), "the origin")

    def passkey(self, host: Host, location: str, *extra: str) -> str:
        return self.cli(self.tracker, "hosts", "add", host.name, "--location", location, *extra,
                        "--tracker", self.tracker_url).strip().splitlines()[-1]

    # -- one distribution ---------------------------------------------------------------------

    def _model(self, size: int) -> tuple[Path, int]:
        model = self.workdir / "external" / "m"
        generate_model(model, size)
        return model, sum(p.stat().st_size for p in model.rglob("*") if p.is_file())

    def _run_until_done(self, started: float, done_when: Any,
                        base: tuple[dict[str, int], dict[str, int], dict[str, int]],
                        faults: Sequence[Fault] = ()) -> tuple[dict[str, float], list[Sample]]:
        """Wait for every client to be done; returns when each was and the byte counters over time
        (counted from ``base``, the counters read just before the start). ``faults`` act first at
        every look."""
        done: dict[str, float] = {}
        timeline: list[Sample] = []

        def sample(final: bool = False) -> None:
            now = time.monotonic() - started
            if timeline and now - timeline[-1].at < 0.25 and not final:
                return
            hosts, racks, sent = self.fabric.all_counters()
            timeline.append(Sample(now, {h: v - base[0][h] for h, v in hosts.items() if h in self.rack_of},
                                   {r: v - base[1][r] for r, v in racks.items()},
                                   hosts["seedbox"] - base[0]["seedbox"],
                                   {h: v - base[2][h] for h, v in sent.items() if h in self.rack_of},
                                   sent["seedbox"] - base[2]["seedbox"]))

        def all_done() -> bool:
            sample()
            for fault in faults:
                fault.poll(self, time.monotonic() - started, timeline[-1])
            for host in self.clients:
                if host.name in self.gone:
                    continue
                if host.name not in done and done_when(host):
                    done[host.name] = time.monotonic() - started
                proc = self.procs.procs[host.name]
                if host.name not in done and proc.poll() is not None and proc.returncode != 0:
                    raise RuntimeError(f"{host.name} exited: {self.procs.log(host.name)[-2000:]}")
            seedbox = self.procs.procs.get("seedbox")
            if seedbox is not None and seedbox.poll() not in (None, 0):  # the hosts would wait for it forever
                raise RuntimeError(f"the seedbox exited: {self.procs.log('seedbox')[-2000:]}")
            return len(done) == len(self.clients) - len(self.gone)

        self.wait_for(all_done, "every host done", timeout=3600)
        sample(final=True)
        return done, timeline

    def pull_direct(self, size: int) -> Result:
        """The naive way: every host downloads the model from external storage over HTTP, through
        the ingress link, all at once."""
        model, size = self._model(size)
        files = [str(p.relative_to(model)) for p in sorted(model.rglob("*")) if p.is_file()]
        self.start_services(model)
        sent_before = self.storage_bytes_sent()
        counters = self.fabric.all_counters()
        cpu = CpuMeter()
        started = time.monotonic()
        base = f"http://{self.storage.ip}:{PORT_ORIGIN}/m/"
        for host in self.clients:
            out = self.workdir / "hosts" / host.name
            self.procs.start(host.name, host.argv(CLI[0], "-m", "tools.lab.pull", base, str(out), *files))
        done, timeline = self._run_until_done(started, lambda h: self.procs.procs[h.name].poll() == 0, counters)
        return Result(len(self.clients), size, max(done.values()), self.topology.bound(size),
                      self.storage_bytes_sent() - sent_before, sum(timeline[-1].racks.values()), self.topology.racks,
                      [done[h.name] for h in self.clients if h.name in done], cpu.busy(), timeline, done)

    def _announces(self) -> int:
        """Peers in the tracker's swarms: read from its database file (the tracker writes them
        behind within 0.1 s), not over HTTP, which from here would cost a process per look."""
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.workdir / 'tracker.db'}?mode=ro", uri=True)) as db:
                return int(db.execute("SELECT count(*) FROM peer").fetchone()[0])
        except sqlite3.Error:  # not created yet, or busy: look again
            return 0

    def gateway_of(self, rack: str, stripe: int, version: str = "1") -> str | None:
        """The host through which ``stripe`` of ``m@version`` enters ``rack`` now, by the tracker's
        rule (tracker/peers.py) over the swarm in its database; None until the rack has announced."""
        query = ("SELECT peer.host_id FROM peer JOIN release ON peer.release_id = release.id "
                 "WHERE release.name = 'm' AND release.version = ? AND peer.\"left\" > 0 AND peer.expires >= ?")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.workdir / 'tracker.db'}?mode=ro", uri=True)) as db:
                downloading = {row[0] for row in db.execute(query, (stripe_version(version, stripe), time.time()))}
                hosts = db.execute("SELECT id, name FROM host WHERE location = ? AND role = 'client' AND NOT revoked "
                                   "ORDER BY id", (f"dc1|pod1|{rack}",)).fetchall()
        except sqlite3.Error:
            return None
        name_of = dict(hosts)
        gateways = stripe_gateways([hid for hid, _ in hosts], downloading & set(name_of), stripe, 1, settled=True)
        return name_of[gateways[0]] if gateways else None

    def storage_stats(self) -> dict[str, Any]:
        """The origin's counters (tools/demo/origin.py): bytes delivered and written, the reads."""
        url = f"http://{self.storage.ip}:{PORT_ORIGIN}/_stats"
        out = subprocess.run(self.storage.argv(CLI[0], "-c", f"import httpx; print(httpx.get({url!r}).text)"),
                             capture_output=True, text=True, check=True, env=self.env).stdout
        stats: dict[str, Any] = json.loads(out)
        return stats

    def storage_bytes_sent(self) -> int:
        return int(self.storage_stats()["bytes_sent"])

    def distribute(self, size: int, piece_size: int = PIECE, *, stock: bool = False,
                   faults: Sequence[Fault] = (), torrent_format: str | None = None, stripes: int = 1) -> Result:
        """modeltorrent: publish a generated model of ``size`` bytes and fetch it on every client
        host at once (streaming seedbox, rack-aware peer lists). ``stock``: plain BitTorrent
        instead, the seedbox seeding only once it has the whole model and the tracker handing
        out peers at random. ``faults`` (tools/lab/faults.py) are injected while it runs."""
        size, public, seed_key, keys = self._publish(
            size, piece_size, {"MODELTORRENT_TRACKER_RACK_AWARE": "false"} if stock else None,
            "--stripes", str(stripes), *(["--format", torrent_format] if torrent_format else []))
        # The hosts' agents run all the time in a datacenter: here they start first and the clock
        # starts once each has announced (seven Python processes starting at once on two cores
        # would otherwise add seconds that no datacenter host spends).
        for host in self.clients:
            self.argv[host.name] = host.argv(
                *CLI, "client", "fetch", "m@1", "--tracker", self.tracker_url, "--passkey", keys[host.name],
                "--root", str(self.workdir / "hosts" / host.name), "--listen", "0.0.0.0:6881",
                "--trust-key", public, "--seed-for", "-1")
            self.procs.start(host.name, self.argv[host.name])
        # Hosts given up on before the start (a full disk) never announce.
        self.wait_for(lambda: self._announces() >= (len(self.clients) - len(self.gone)) * stripes,
                   "every host's first announce")
        for fault in faults:  # those that must be in place before the clock starts
            if (before := getattr(fault, "before_start", None)) is not None:
                before(self)
        sent_before = self.storage_bytes_sent()  # measured at the storage: counts across seedbox restarts
        counters = self.fabric.all_counters()
        cpu = CpuMeter()
        started = time.monotonic()
        self._start_seedbox(seed_key, public, {"MODELTORRENT_SEEDBOX_STREAM": "false"} if stock else None)
        done, timeline = self._run_until_done(started, self._activated, counters, faults)
        return self._result(size, done, timeline, sent_before, cpu)

    def _publish(self, size: int, piece_size: int, tracker_env: dict[str, str] | None,
                 *extra: str) -> tuple[int, str, str, dict[str, str]]:
        """Generate a model of ``size`` bytes, start the services, publish it as ``m@1`` (``extra``:
        more publish options) and register the seedbox and every client host. Returns the model's
        size, the publisher's public key, the seedbox's passkey and each host's."""
        model, size = self._model(size)
        key = self.workdir / "publisher.key"
        public = signing.generate_key(key)
        self.start_services(model, tracker_env)
        source = f"http://{self.storage.ip}:{PORT_ORIGIN}/m"
        self.cli(self.tracker, "publish", str(model), "--name", "m", "--version", "1", "--key", str(key),
                 "--source", source, "--piece-size", str(piece_size), "--tracker", self.tracker_url, *extra)
        seed_key = self.passkey(self.seedbox, "dc1|pod1|seedbox", "--seedbox")
        keys = {h.name: self.passkey(h, f"dc1|pod1|{self.rack_of[h.name]}") for h in self.clients}
        return size, public, seed_key, keys

    def _start_seedbox(self, seed_key: str, public: str, env: dict[str, str] | None = None) -> None:
        self.argv["seedbox"] = self.seedbox.argv(
            *CLI, "seedbox", "run", "m@1", "--tracker", self.tracker_url, "--passkey", seed_key,
            "--workdir", str(self.workdir / "seedbox"), "--listen", "0.0.0.0:6881", "--trust-key", public)
        self.procs.start("seedbox", self.argv["seedbox"], env=env)

    def _activated(self, host: Host) -> bool:
        return (self.workdir / "hosts" / host.name / "m" / "current").exists()

    def _result(self, size: int, done: dict[str, float], timeline: list[Sample], sent_before: int,
                cpu: CpuMeter) -> Result:
        return Result(len(self.clients), size, max(done.values()), self.topology.bound(size),
                      self.storage_bytes_sent() - sent_before, sum(timeline[-1].racks.values()), self.topology.racks,
                      [done[h.name] for h in self.clients if h.name in done], cpu.busy(), timeline, done)

    def api(self, call: str, *args: Any, **kwargs: Any) -> Any:
        """``TrackerClient.<call>(*args, **kwargs)`` with the admin token, from inside the tracker's host and
        along every tracker URL (as an operator's CLI fails over): its JSON answer."""
        code = ("import json, sys; from tracker.api_client import TrackerClient; "
                f"api = TrackerClient({self.tracker_url!r}, admin_token={self.token!r}); "
                f"args, kwargs = json.loads(sys.argv[1]); print(json.dumps(api.{call}(*args, **kwargs)))")
        done = subprocess.run(self.tracker.argv(CLI[0], "-c", code, json.dumps([args, kwargs])),
                              capture_output=True, text=True, cwd=REPO, env=self.env, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{call}{args} failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def get(self, host: Host, url: str) -> tuple[int, str]:
        """An HTTP GET from inside ``host``: (status, body)."""
        code = "import httpx, sys; r = httpx.get(sys.argv[1], timeout=10); print(r.status_code); print(r.text)"
        done = subprocess.run(host.argv(CLI[0], "-c", code, url), capture_output=True, text=True, env=self.env,
                              timeout=60, check=True)
        status, _, body = done.stdout.partition("\n")
        return int(status), body

    def deploy(self, size: int, piece_size: int = PIECE, *,
               faults: Sequence[Fault] = ()) -> tuple[Result, dict[str, Any]]:
        """The way an operator runs it: an agent (``client run``) on every client host, the seedbox,
        and one deployment job to all of them (``modeltorrent deploy --all``). Waits for every host's
        activation, then for the job's end; returns the measurement and the job as the tracker
        ended it. ``faults`` are injected while it runs."""
        size, public, seed_key, keys = self._publish(size, piece_size, None)
        for host in self.clients:
            self.argv[host.name] = host.argv(
                *CLI, "client", "run", "--tracker", self.tracker_url, "--passkey", keys[host.name],
                "--root", str(self.workdir / "hosts" / host.name), "--listen", "0.0.0.0:6881",
                "--trust-key", public, "--poll-interval", "1")
            self.procs.start(host.name, self.argv[host.name])
        sent_before = self.storage_bytes_sent()
        counters = self.fabric.all_counters()
        cpu = CpuMeter()
        started = time.monotonic()
        self._start_seedbox(seed_key, public)
        job = self.api("deploy", "m", "1", all_hosts=True)
        done, timeline = self._run_until_done(started, self._activated, counters, faults)
        deadline = time.monotonic() + 120
        while job["state"] not in ("activated", "partially_failed", "failed", "cancelled", "superseded"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job['id']} still {job['state']} 120 s after every host activated")
            time.sleep(1)
            job = self.api("deployment", job["id"])
        return self._result(size, done, timeline, sent_before, cpu), job

    def close(self) -> None:
        self.procs.stop_all()
        self.fabric.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        if kind is None and not os.environ.get("MODELTORRENT_LAB_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
