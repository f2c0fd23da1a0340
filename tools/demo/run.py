"""``modeltorrent demo``: the whole path on one machine, as real processes.

An HTTP origin (external storage) holds a generated model; a tracker (SQLite), a seedbox and N
client hosts start; the model is published and distributed with a live progress view; the
summary checks every host's active model piece by piece and the bytes the origin served.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from client.store import ModelStore
from common import signing
from common.errors import ModeltorrentError
from common.layout import auto_piece_size
from common.milestones import Milestones
from common.units import format_size
from tools.cli.publish import publish
from tools.demo.modelgen import generate_model
from tools.demo.procs import CLI, Procs, start_origin, start_tracker
from tracker.api_client import TrackerClient

NAME, VERSION = "demo-model", "1"
DONE = ("activated", "seeding")


def run_demo(*, hosts: int, size: int, workdir: Path | None, keep: bool, console: Console,
             timeout: float = 900.0) -> bool:
    wd = (workdir or Path(tempfile.mkdtemp(prefix="modeltorrent-demo-"))).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    for old in ("external", "hosts", "seedbox", "logs", "keys"):  # a reused workdir starts clean
        shutil.rmtree(wd / old, ignore_errors=True)
    for db in wd.glob("tracker.db*"):
        db.unlink()
    procs = Procs(wd / "logs")
    token = secrets.token_hex(16)
    # SIGTERM (e.g. from `timeout`) must still stop every process the demo started.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        console.print(f"[bold]modeltorrent demo[/]: {hosts} hosts, {format_size(size)} model, in {wd}")
        external = wd / "external" / NAME
        generate_model(external, size)
        model_size = sum(p.stat().st_size for p in external.rglob("*") if p.is_file())
        key = wd / "keys" / "publisher.key"
        public = signing.generate_key(key)
        origin = start_origin(procs, wd / "external")
        tracker = start_tracker(procs, wd / "tracker.db", token, interval=5)
        console.print(f"tracker {tracker}  origin {origin}  (logs in {procs.log_dir})")
        admin = TrackerClient(tracker, admin_token=token)
        seed_key = admin.add_host("seedbox", "dc1|pod1|rack-seed", "seedbox")["passkey"]
        host_keys = {f"host-{i + 1}": admin.add_host(f"host-{i + 1}", f"dc1|pod1|rack-{'ab'[i % 2]}")["passkey"]
                     for i in range(hosts)}
        piece_size = auto_piece_size(model_size)
        publish(external, name=NAME, version=VERSION, key_path=key, source=f"{origin}/{NAME}",
                piece_size=piece_size, tracker=tracker, admin_token=token, console=console)
        console.print(f"published {NAME}@{VERSION}: {model_size} bytes in pieces of {format_size(piece_size)}")
        started = time.monotonic()
        procs.start("seedbox", [*CLI, "seedbox", "run", f"{NAME}@{VERSION}", "--tracker", tracker,
                                "--passkey", seed_key, "--workdir", str(wd / "seedbox"),
                                "--listen", "127.0.0.1:0", "--trust-key", public])
        for host, passkey in host_keys.items():
            procs.start(host, [*CLI, "client", "fetch", f"{NAME}@{VERSION}", "--tracker", tracker,
                               "--passkey", passkey, "--root", str(wd / "hosts" / host),
                               "--listen", "127.0.0.1:0", "--trust-key", public, "--seed-for", "-1",
                               "--json"])
        ok = _watch(console, procs, admin, list(host_keys), started, timeout)
        elapsed = time.monotonic() - started
        for name in ["seedbox", *host_keys]:
            procs.stop(name)
        return _summary(console, wd, admin, origin, list(host_keys), model_size, elapsed, ok)
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, previous)
        if not keep and workdir is None:
            shutil.rmtree(wd, ignore_errors=True)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


class _Lines:
    """The demo's progress as lines, where no table can be redrawn (not a terminal): a line when a
    host's state changes, and one at each tenth of the bytes all hosts must get."""

    def __init__(self, console: Console, hosts: list[str]) -> None:
        self.console = console
        self.hosts = hosts
        self.states: dict[str, str] = {}
        self.tenths: Milestones | None = None

    def update(self, rows: dict[str, dict], elapsed: float) -> None:
        for name in ["seedbox", *self.hosts]:
            state = rows.get(name, {}).get("state", "waiting")
            if self.states.get(name) != state:
                self.states[name] = state
                self.console.print(f"{elapsed:6.1f}s {name}: {state}", highlight=False)
        sizes = [rows[h]["total_size"] for h in self.hosts if rows.get(h, {}).get("total_size")]
        if self.tenths is None and sizes:
            self.tenths = Milestones(sizes[0] * len(self.hosts))
        if self.tenths is not None and (step := self.tenths.passed(
                sum(rows.get(h, {}).get("bytes_done", 0) for h in self.hosts))) is not None:
            self.console.print(f"{elapsed:6.1f}s hosts hold {step}% of the bytes", highlight=False)


def _watch(console: Console, procs: Procs, admin: TrackerClient, hosts: list[str],
           started: float, timeout: float) -> bool:
    lines = None if console.is_terminal else _Lines(console, hosts)
    with Live(console=console, refresh_per_second=4, transient=False) if lines is None \
            else contextlib.nullcontext() as live:
        while True:
            rows = {r["host"]: r for r in admin.status(NAME)}
            if live is not None:
                live.update(_table(rows, hosts, time.monotonic() - started))
            else:
                assert lines is not None
                lines.update(rows, time.monotonic() - started)
            if all(rows.get(h, {}).get("state") in DONE for h in hosts):
                return True
            dead = [n for n, p in procs.procs.items() if p.poll() is not None]
            if dead:
                console.print(f"[red]stopped early:[/] {', '.join(dead)}")
                for name in dead:
                    console.print(procs.log(name)[-2000:])
                return False
            if time.monotonic() - started > timeout:
                console.print(f"[red]timed out after {timeout:.0f}s[/]")
                return False
            time.sleep(0.5)


def _table(rows: dict[str, dict], hosts: list[str], elapsed: float) -> Group:
    table = Table("host", "location", "state", "progress", "", "rate", title=f"{NAME}@{VERSION}  {elapsed:.1f}s")
    for name in ["seedbox", *hosts]:
        r = rows.get(name, {})
        total = r.get("total_size") or 1
        done = r.get("bytes_done", 0)
        state = r.get("state", "waiting")
        rate = f"{format_size(r.get('download_rate', 0))}/s" if name != "seedbox" else \
            f"src {format_size(r.get('bytes_downloaded', 0))}"
        table.add_row(name, r.get("location", ""), state, ProgressBar(total=total, completed=done, width=30),
                      f"{100 * done / total:5.1f}%", rate)
    return Group(table)


def _summary(console: Console, wd: Path, admin: TrackerClient, origin: str, hosts: list[str],
             model_size: int, elapsed: float, ok: bool) -> bool:
    manifest = None
    table = Table("host", "active version", "verified")
    all_good = ok
    for host in hosts:
        store = ModelStore(wd / "hosts" / host)
        active = store.active_version(NAME)
        verdict = "no"
        if active == VERSION:
            try:
                manifest = manifest or _manifest(admin)
                manifest.verify_data(store.current(NAME))
                verdict = "yes, every piece"
            except ModeltorrentError as exc:
                verdict = f"NO: {exc}"
        all_good &= verdict.startswith("yes")
        table.add_row(host, active or "-", verdict)
    console.print(table)
    source_bytes = httpx.get(f"{origin}/_stats").json()["bytes_sent"]
    console.print(f"elapsed (seedbox start to all hosts active): {elapsed:.1f}s")
    console.print(f"bytes read from the source: {source_bytes} for a model of {model_size} bytes "
                  f"({source_bytes / model_size:.2f}x)")
    all_good &= source_bytes == model_size
    console.print("[bold green]OK[/]: every host verified and activated" if all_good
                  else "[bold red]FAILED[/]")
    return all_good


def _manifest(admin: TrackerClient):  # type: ignore[no-untyped-def]
    from common.manifest import Manifest

    return Manifest.from_json(admin._request("GET", f"/api/torrents/{NAME}/{VERSION}/manifest").content)
