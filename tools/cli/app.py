"""``modeltorrent``: one command for publishers, operators and host agents."""

from __future__ import annotations

import contextlib
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer >= 0.2x vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc  # type: ignore[no-redef]
from rich.console import Console

from common.errors import ModeltorrentError
from common.layout import DEFAULT_PIECE_SIZE
from common.tls import CA_BUNDLE_ENV
from common.units import parse_size

err = Console(stderr=True)
out = Console()

app = typer.Typer(
    help="Peer-to-peer distribution of very large ML models inside a datacenter.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich markup took "[default ...]" in option help for a style tag and dropped it,
    # and listed flags (--help too) as "<bool>".
    rich_markup_mode=None,
)
tracker_app = typer.Typer(help="Run the tracker (control plane).", no_args_is_help=True, rich_markup_mode=None)
hosts_app = typer.Typer(help="Register and list hosts.", no_args_is_help=True, rich_markup_mode=None)
seedbox_app = typer.Typer(help="Run the seedbox.", no_args_is_help=True, rich_markup_mode=None)
client_app = typer.Typer(help="Fetch and activate models on this host.", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(tracker_app, name="tracker")
app.add_typer(hosts_app, name="hosts")
app.add_typer(seedbox_app, name="seedbox")
app.add_typer(client_app, name="client")


@app.callback()
def _options(
    log_level: Annotated[str | None, typer.Option(
        "--log-level", envvar="MODELTORRENT_LOG", show_default=False,
        help="DEBUG, INFO, WARNING or ERROR  [default: INFO for tracker serve, seedbox run and client run; "
        "WARNING for the rest]")] = None,
    log_format: Annotated[str, typer.Option("--log-format", envvar="MODELTORRENT_LOG_FORMAT",
                                            help="text, or json: one JSON object a line, for log shippers")] = "text",
    ca_bundle: Annotated[Path | None, typer.Option(
        "--ca-bundle", envvar=CA_BUNDLE_ENV, exists=True, dir_okay=False, show_default=False,
        help="PEM CA certificates that an HTTPS tracker's certificate is verified against, by this command and "
        "by libtorrent's announces  [default: the system's]")] = None,
) -> None:
    """Peer-to-peer distribution of very large ML models inside a datacenter."""
    from common import logs

    if ca_bundle is not None:  # read by the API client and libtorrent sessions (common/tls.py)
        os.environ[CA_BUNDLE_ENV] = str(ca_bundle.resolve())

    try:
        logs.setup(log_level, log_format)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def size_option(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def split_ref(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise typer.BadParameter(f"{ref!r} is not NAME@VERSION")
    return name, version


def given(**values: Any) -> dict[str, Any]:
    """Only the options the user gave, so settings fall back to environment variables."""
    return {k: v for k, v in values.items() if v is not None}


TrackerOpt = Annotated[str | None, typer.Option("--tracker", help="tracker URL",
                                                envvar="MODELTORRENT_TRACKER_URL")]
AdminOpt = Annotated[str | None, typer.Option("--admin-token", envvar="MODELTORRENT_ADMIN_TOKEN",
                                              help="admin token",
                                              show_default=False)]
PasskeyOpt = Annotated[str | None, typer.Option("--passkey", help="this host's passkey "
                                                "(from `hosts add`)",
                                                envvar="MODELTORRENT_PASSKEY", show_default=False)]
TrustOpt = Annotated[list[str] | None, typer.Option("--trust-key", help="trusted publisher key: hex "
                                                    "or a .pub file (repeatable)")]


RootOpt = Annotated[Path | None, typer.Option(help="model store  [default: /var/lib/modeltorrent; env var: "
                                                   "MODELTORRENT_CLIENT_ROOT]", show_default=False)]
ListenOpt = Annotated[str | None, typer.Option(help="libtorrent listen address  [default: 0.0.0.0:6881]",
                                               show_default=False)]
UploadOpt = Annotated[str | None, typer.Option(help="upload cap per second, e.g. 200MiB")]
DownloadOpt = Annotated[str | None, typer.Option(help="download cap per second")]
ConnectionsOpt = Annotated[int | None, typer.Option(help="connection limit", min=1)]
LowPriorityOpt = Annotated[bool | None, typer.Option(
    "--low-priority", help="lower caps and a DSCP mark, for hosts serving production traffic (also on while "
    "<root>/low-priority exists: `modeltorrent client priority low`)", show_default=False)]
MetricsOpt = Annotated[str | None, typer.Option(help="serve Prometheus /metrics on host:port")]
OnActivateOpt = Annotated[str | None, typer.Option(
    "--on-activate", help="shell command run after a version becomes active (gets MODELTORRENT_MODEL, "
    "MODELTORRENT_VERSION, MODELTORRENT_PATH)  [env var: MODELTORRENT_CLIENT_ON_ACTIVATE]")]


def client_overrides(tracker: str | None, passkey: str | None, root: Path | None, listen: str | None,
                     trust_key: list[str] | None, upload_rate: str | None, download_rate: str | None,
                     connections: int | None, on_activate: str | None = None,
                     metrics_listen: str | None = None, low_priority: bool | None = None) -> dict[str, Any]:
    return given(tracker_url=tracker, passkey=passkey, root=root, listen=listen, trusted_keys=trusted(trust_key),
                 upload_rate=size_option(upload_rate), download_rate=size_option(download_rate),
                 connections=connections, on_activate=on_activate, metrics_listen=metrics_listen,
                 low_priority=low_priority)


def need(value: str | None, what: str, hint: str) -> str:
    if not value:
        raise typer.BadParameter(f"{what} is required ({hint})")
    return value


# -- publisher -----------------------------------------------------------------------------------


@app.command()
def keygen(
    out_path: Annotated[Path, typer.Option("--out", help="private key path (public key: <out>.pub)")]
    = Path("~/.config/modeltorrent/publisher.key"),
    force: Annotated[bool, typer.Option(help="overwrite an existing key")] = False,
) -> None:
    """Create an ed25519 publisher key pair."""
    from common import signing

    public = signing.generate_key(out_path, force=force)
    out.print(f"wrote {out_path.expanduser()} and {out_path.expanduser()}.pub")
    out.print(f"public key: {public}")


class TorrentFormat(StrEnum):
    v2 = "v2"
    hybrid = "hybrid"
    v1 = "v1"


@app.command()
def publish(
    path: Annotated[Path, typer.Argument(help="a model file or a folder of files", exists=True)],
    name: Annotated[str, typer.Option(help="model name")],
    version: Annotated[str, typer.Option(help="model version")],
    tracker: TrackerOpt = None,
    key: Annotated[Path, typer.Option(help="publisher private key")] = Path("~/.config/modeltorrent/publisher.key"),
    source: Annotated[str | None, typer.Option(help="where the seedbox reads the model "
                                               "(a path, file://, http(s)://HOST/PREFIX or s3://BUCKET/PREFIX)  "
                                               "[default: PATH]")] = None,
    piece_size: Annotated[str, typer.Option(help="piece size, a power of two")] = "64MiB",
    admin_token: AdminOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="also write manifest.json and "
                                                 ".torrent here")] = None,
    torrent_format: Annotated[TorrentFormat, typer.Option(
        "--format", help="v2: each byte hashed once per host, for libtorrent 2 clients (ours, qBittorrent, "
        "Deluge); hybrid: v1+v2, also for v1-only clients (rtorrent), at one more hash (SHA-1) per byte "
        "everywhere; v1: for clients that cannot read v2 torrents (transmission 3, aria2 1.36): no block "
        "hashes, each download verified again before activation, no streaming seedbox")] = TorrentFormat.v2,
    republish: Annotated[bool, typer.Option(help="register NAME@VERSION again although it is published: "
                                            "the tracker takes it only if the bytes are the same")] = False,
    stripes: Annotated[int, typer.Option(
        min=1, max=64, help="split the swarm into this many stripes (each its own torrent and swarm over "
        "every K-th piece), so that each rack takes the model in through as many of its hosts: for fleets of "
        "modeltorrent agents whose racks have more than one host; 1: one torrent, which stock clients can "
        "join too")] = 1,
) -> None:
    """Hash a model, sign its manifest, build its torrent and register both with the tracker."""
    from tools.cli.publish import publish as do_publish

    size = size_option(piece_size) or DEFAULT_PIECE_SIZE
    result = do_publish(
        path, name=name, version=version, key_path=key, source=source, piece_size=size,
        torrent_format=torrent_format.value,
        tracker=need(tracker, "--tracker", "or MODELTORRENT_TRACKER_URL"),
        admin_token=need(admin_token, "--admin-token", "or MODELTORRENT_ADMIN_TOKEN"),
        out_dir=out_dir, console=err, republish=republish, stripes=stripes,
    )
    out.print(result["info_hash_v1"] or result["info_hash_v2"])


# -- tracker -------------------------------------------------------------------------------------


@tracker_app.command("serve")
def tracker_serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=0, max=65535)] = 8000,
    database_url: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL, e.g. sqlite:///tracker.db or "
                                                     "postgresql+psycopg://user@host/db  [default: "
                                                     "sqlite:///./modeltorrent-tracker.db; env var: "
                                                     "MODELTORRENT_TRACKER_DATABASE_URL]")] = None,
    admin_token: AdminOpt = None,
    public_url: Annotated[str | None, typer.Option(help="base URL written into torrents")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (chain): serve HTTPS", exists=True,
                                                  dir_okay=False)] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert", exists=True,
                                                 dir_okay=False)] = None,
    peer_ca_cert: Annotated[Path | None, typer.Option(help="PEM certificate of the peer CA: peers talk only to "
                                                      "registered hosts (SSL torrents)", exists=True,
                                                      dir_okay=False)] = None,
    peer_ca_key: Annotated[Path | None, typer.Option(help="PEM private key of --peer-ca-cert", exists=True,
                                                     dir_okay=False)] = None,
    interval: Annotated[int | None, typer.Option(help="announce interval, seconds  [default: 60]", min=1)] = None,
    workers: Annotated[int, typer.Option(help="worker processes (state is shared in the database)",
                                         min=1, max=64)] = 1,
) -> None:
    """Serve the tracker: /announce, /scrape, the page at /, the JSON API (/docs), /metrics."""
    import tempfile

    import uvicorn

    if not (admin_token or os.environ.get("MODELTORRENT_TRACKER_ADMIN_TOKEN")):
        raise typer.BadParameter("an admin token is required (--admin-token or MODELTORRENT_ADMIN_TOKEN)")
    # Options become the environment, so that every worker builds the same settings from it.
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    if (peer_ca_cert is None) != (peer_ca_key is None):
        raise typer.BadParameter("--peer-ca-cert and --peer-ca-key go together")
    for key, value in given(admin_token=admin_token, database_url=database_url, public_url=public_url,
                            interval=interval, tls_cert=tls_cert, tls_key=tls_key, peer_ca_cert=peer_ca_cert,
                            peer_ca_key=peer_ca_key).items():
        os.environ[f"MODELTORRENT_TRACKER_{key.upper()}"] = str(value)
    with contextlib.ExitStack() as cleanup:
        if workers > 1:
            metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            if metrics_dir:  # the operator's directory: emptied, since counters of a past run would add up
                for stale in Path(metrics_dir).glob("*.db"):
                    stale.unlink()
            else:  # ours: fresh for this run, removed at exit
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = cleanup.enter_context(
                    tempfile.TemporaryDirectory(prefix="modeltorrent-metrics-"))
        from common import logs
        from tools.cli.serve import check_port_free, log_when_ready
        from tracker.db import make_engine
        from tracker.settings import TrackerSettings

        logs.service()
        check_port_free(host, port)
        settings = TrackerSettings()  # type: ignore[call-arg]  # from the environment, as the workers
        make_engine(settings.database_url).dispose()  # migrate before workers
        if (settings.tls_cert is None) != (settings.tls_key is None):
            raise typer.BadParameter("MODELTORRENT_TRACKER_TLS_CERT and _TLS_KEY go together")
        if settings.peer_ca_cert or settings.peer_ca_key:
            from common import peer_certs
            if not (settings.peer_ca_cert and settings.peer_ca_key):
                raise typer.BadParameter("MODELTORRENT_TRACKER_PEER_CA_CERT and _PEER_CA_KEY go together")
            try:
                peer_certs.check_ca(Path(settings.peer_ca_cert).read_text(), Path(settings.peer_ca_key).read_text())
            except (OSError, ValueError) as exc:
                raise typer.BadParameter(f"the peer CA: {exc}") from exc
        base = f"{'https' if settings.tls_cert else 'http'}://{host}:{port}"
        log_when_ready(host, port, f"tracker ready on {base}: announce {base}/announce, page {base}/, "
                       f"API {base}/docs, metrics {base}/metrics; database {redact_url(settings.database_url)}; "
                       f"{workers} worker(s), announce interval {settings.interval} s", https=bool(settings.tls_cert))
        uvicorn.run("tracker.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    access_log=False,
                    # uvicorn's httptools protocol answering announces on the connection (tracker/http_fast.py)
                    http="tracker.http_fast:AnnounceProtocol",
                    # Peers are told apart by the connection's address; no proxy may rewrite it.
                    proxy_headers=False,
                    ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key,
                    log_level="warning")


@hosts_app.command("add")
def hosts_add(
    name: Annotated[str, typer.Argument(help="host name")],
    location: Annotated[str, typer.Option("--location", "--rack", help="where it sits: dc|pod|rack, "
                                          "e.g. 'dc1|pod2|rack7'")] = "",
    seedbox: Annotated[bool, typer.Option("--seedbox", help="this host is a seedbox")] = False,
    tracker: TrackerOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Register a host (idempotent) and print its passkey."""
    from tracker.api_client import TrackerClient

    with TrackerClient(need(tracker, "--tracker", "or MODELTORRENT_TRACKER_URL"),
                       admin_token=need(admin_token, "--admin-token", "or MODELTORRENT_ADMIN_TOKEN")) as api:
        host = api.add_host(name, location, "seedbox" if seedbox else "client")
    out.print(host["passkey"])


@hosts_app.command("list")
def hosts_list(tracker: TrackerOpt = None, admin_token: AdminOpt = None) -> None:
    """List registered hosts."""
    from rich.table import Table

    from tracker.api_client import TrackerClient

    with TrackerClient(need(tracker, "--tracker", "or MODELTORRENT_TRACKER_URL"),
                       admin_token=need(admin_token, "--admin-token", "or MODELTORRENT_ADMIN_TOKEN")) as api:
        hosts = api.list_hosts()
    table = Table("name", "location", "role", "revoked")
    for h in hosts:
        table.add_row(h["name"], h["location"], h["role"], "yes" if h["revoked"] else "")
    out.print(table)


# -- seedbox and client --------------------------------------------------------------------------


def trusted(keys: list[str] | None) -> list[str] | None:
    from common.signing import parse_public_key

    return [parse_public_key(k) for k in keys] if keys else None


@seedbox_app.command("run")
def seedbox_run(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION")],
    tracker: TrackerOpt = None,
    passkey: PasskeyOpt = None,
    workdir: Annotated[Path | None, typer.Option(help="where pieces and status files are stored  [default: "
                                                 "/var/lib/modeltorrent-seedbox]")] = None,
    source: Annotated[str | None, typer.Option(help="override the manifest's source URI")] = None,
    listen: ListenOpt = None,
    trust_key: TrustOpt = None,
    upload_rate: UploadOpt = None,
    ingress_rate: Annotated[str | None, typer.Option(help="cap on reads from external storage per second, "
                                                     "e.g. 500MiB [default: none]")] = None,
    metrics_listen: MetricsOpt = None,
) -> None:
    """Pull a model from external storage once, verify every piece, and seed it (until stopped)."""
    from common import logs
    from seedbox.run import run
    from seedbox.settings import SeedboxSettings

    logs.service()

    name, version = split_ref(ref)
    settings = SeedboxSettings(**given(
        tracker_url=tracker, passkey=passkey, workdir=workdir, listen=listen,
        trusted_keys=trusted(trust_key), upload_rate=size_option(upload_rate),
        ingress_rate=size_option(ingress_rate), metrics_listen=metrics_listen,
    ))
    run(settings, name, version, source)


@client_app.command("fetch")
def client_fetch(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION")],
    tracker: TrackerOpt = None,
    passkey: PasskeyOpt = None,
    root: RootOpt = None,
    listen: ListenOpt = None,
    trust_key: TrustOpt = None,
    upload_rate: UploadOpt = None,
    download_rate: DownloadOpt = None,
    connections: ConnectionsOpt = None,
    on_activate: OnActivateOpt = None,
    metrics_listen: MetricsOpt = None,
    low_priority: LowPriorityOpt = None,
    seed_for: Annotated[float, typer.Option(help="seconds to keep seeding after activation "
                                            "(-1: until stopped)")] = 0.0,
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Download, verify and atomically activate a model version on this host."""
    from tools.cli.fetch import fetch

    name, version = split_ref(ref)
    fetch(name, version, seed_for=seed_for, json_out=json_out, console=err, overrides=client_overrides(
        tracker, passkey, root, listen, trust_key, upload_rate, download_rate, connections, on_activate,
        metrics_listen, low_priority))


@client_app.command("rollback")
def client_rollback(
    name: Annotated[str, typer.Argument(help="model name")],
    to: Annotated[str | None, typer.Option(help="version to activate (default: the one active before)")] = None,
    root: RootOpt = None,
    on_activate: OnActivateOpt = None,
) -> None:
    """Make an earlier verified version of a model active again, atomically (no download)."""
    from client.hooks import run_on_activate
    from client.settings import StoreSettings
    from client.store import ModelStore

    settings = StoreSettings(**given(root=root, on_activate=on_activate))
    store = ModelStore(settings.root)
    previous, now = store.rollback(name, to)
    out.print(f"{name}: {previous or '(none)'} -> {now} (active: {store.current(name)})")
    error = run_on_activate(settings.on_activate, name, now, store.current(name), settings.on_activate_timeout)
    if error:
        raise ModeltorrentError(error, hint="the rolled-back version is active; fix the hook and run it again")


@client_app.command("priority")
def client_priority(
    mode: Annotated[str, typer.Argument(help="low or normal")],
    root: RootOpt = None,
) -> None:
    """Switch this host's fetching and seeding to low priority (lower caps, DSCP mark) or back.

    Running clients pick the change up within seconds; serving processes can switch it as their load comes and goes.
    """
    from client.priority import MARKER
    from client.settings import StoreSettings

    if mode not in ("low", "normal"):
        raise typer.BadParameter(f"{mode!r}: use low or normal", param_hint="MODE")
    marker = StoreSettings(**given(root=root)).root / MARKER
    if mode == "low":
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    else:
        marker.unlink(missing_ok=True)
    out.print(f"priority: {mode} ({marker} {'present' if mode == 'low' else 'absent'})")


@client_app.command("run")
def client_run(
    tracker: TrackerOpt = None,
    passkey: PasskeyOpt = None,
    root: RootOpt = None,
    listen: ListenOpt = None,
    trust_key: TrustOpt = None,
    upload_rate: UploadOpt = None,
    download_rate: DownloadOpt = None,
    connections: ConnectionsOpt = None,
    on_activate: OnActivateOpt = None,
    metrics_listen: MetricsOpt = None,
    low_priority: LowPriorityOpt = None,
    location: Annotated[str | None, typer.Option(help="this host's dc|pod|rack (else as registered)")] = None,
    poll_interval: Annotated[float, typer.Option(help="seconds between polls of the tracker", min=0.2)] = 5.0,
) -> None:
    """The host agent: fetch and activate whatever the tracker's deployments want on this host."""
    from common import logs
    from tools.cli.agent import run_agent

    logs.service()
    overrides = client_overrides(tracker, passkey, root, listen, trust_key, upload_rate, download_rate, connections,
                                 on_activate, metrics_listen, low_priority)
    run_agent(overrides, poll_interval=poll_interval, location=location)


# -- deployments ---------------------------------------------------------------------------------


def split_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command()
def deploy(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION")],
    hosts: Annotated[str | None, typer.Option(help="comma-separated host names")] = None,
    racks: Annotated[str | None, typer.Option(help="comma-separated racks (or full dc|pod|rack)")] = None,
    all_hosts: Annotated[bool, typer.Option("--all", help="every registered client host")] = False,
    key: Annotated[str | None, typer.Option(help="idempotency key: the same key returns the same job")] = None,
    wait: Annotated[bool, typer.Option(help="watch until the job ends; exit 1 unless all activated")] = False,
    timeout: Annotated[float | None, typer.Option(help="with --wait: give up after this many seconds")] = None,
    tracker: TrackerOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Deploy a model version to hosts, racks or all hosts."""
    from tools.cli.deploy import outcome, watch_job
    from tracker.api_client import TrackerClient

    name, version = split_ref(ref)
    if sum([bool(hosts), bool(racks), all_hosts]) != 1:
        raise typer.BadParameter("give exactly one of --hosts, --racks or --all")
    with TrackerClient(need(tracker, "--tracker", "or MODELTORRENT_TRACKER_URL"),
                       admin_token=need(admin_token, "--admin-token", "or MODELTORRENT_ADMIN_TOKEN")) as api:
        job = api.deploy(name, version, hosts=split_list(hosts), racks=split_list(racks), all_hosts=all_hosts,
                         key=key)
        out.print(f"job {job['id']}: {name}@{version} to {len(job['hosts'])} hosts ({job['state']})")
        if wait:
            job = watch_job(api, job["id"], out, timeout=timeout)
            ok, message = outcome(job)
            out.print(message)
            raise typer.Exit(0 if ok else 1)


@app.command()
def status(
    job: Annotated[int | None, typer.Argument(help="a deployment id; without it, the list of jobs")] = None,
    watch: Annotated[bool, typer.Option(help="keep updating until the job ends (Ctrl-C to leave)")] = False,
    cancel: Annotated[bool, typer.Option(help="cancel the job (needs the admin token)")] = False,
    tracker: TrackerOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Show deployments, one job's per-host progress, or cancel a job."""
    from tools.cli.deploy import job_view, jobs_table, watch_job
    from tracker.api_client import TrackerClient

    with TrackerClient(need(tracker, "--tracker", "or MODELTORRENT_TRACKER_URL"), admin_token=admin_token) as api:
        if job is None:
            out.print(jobs_table(api.deployments()))
        elif cancel:
            out.print(job_view(api.cancel(job)))
        elif watch:
            watch_job(api, job, out, timeout=None)
        else:
            out.print(job_view(api.deployment(job)))


# -- demo ----------------------------------------------------------------------------------------


@app.command()
def demo(
    hosts: Annotated[int, typer.Option(help="number of client hosts", min=1, max=64)] = 4,
    size: Annotated[str, typer.Option(help="generated model size")] = "256MiB",
    workdir: Annotated[Path | None, typer.Option(help="where everything lives (default: a temp dir)")] = None,
    keep: Annotated[bool, typer.Option(help="keep the workdir afterwards")] = False,
) -> None:
    """Tracker + seedbox + N clients on this machine distribute a generated model, end to end."""
    from tools.demo.run import run_demo

    model_size = size_option(size)
    assert model_size is not None
    if model_size < 1:
        raise typer.BadParameter("size must be at least 1 byte")
    ok = run_demo(hosts=hosts, size=model_size, workdir=workdir, keep=keep, console=out)
    raise typer.Exit(0 if ok else 1)


def redact_url(url: str) -> str:
    """A database URL fit for a log: its password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: say nothing of it
        return "(unreadable URL)"


def report_error(message: str, hint: str | None = None) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    if hint:
        err.print(f"hint: {hint}", highlight=False, soft_wrap=True, style="dim")


def main() -> None:
    from pydantic import ValidationError

    from common import logs

    try:  # before the options are read: what went wrong before that is logged too
        logs.setup(os.environ.get("MODELTORRENT_LOG"), os.environ.get("MODELTORRENT_LOG_FORMAT", "text"))
    except ValueError:
        logs.setup(None)  # the option parser names the bad value
    try:
        code = app(standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:
        out.print(exc.ctx.get_help() if exc.ctx else "see --help")
        sys.exit(0)
    except click_exc.UsageError as exc:  # one line, exit 2
        where = f"{exc.ctx.command_path}: " if exc.ctx else ""
        report_error(f"{where}{exc.format_message()} (see --help)")
        sys.exit(2)
    except typer.Abort:
        err.print("interrupted")
        sys.exit(130)
    except ModeltorrentError as exc:
        report_error(exc.message, exc.hint)
        sys.exit(1)
    except ValidationError as exc:  # a setting missing or invalid, from options or environment
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        report_error(f"setting {field}: {first['msg']}",
                     "pass it as an option (see --help) or set it in the environment")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
