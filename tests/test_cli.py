"""The CLI as users run it: help, one-line usage errors with exit code 2, clear failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.demo.procs import REPO


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "200"} | (env or {})
    for var in ("MODELTORRENT_TRACKER_URL", "MODELTORRENT_ADMIN_TOKEN", "MODELTORRENT_PASSKEY"):
        if var not in (env or {}):
            full.pop(var, None)
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], capture_output=True, text=True,
                          env=full, cwd=REPO, timeout=60)


@pytest.mark.parametrize("args", [
    ["--help"], ["publish", "--help"], ["tracker", "serve", "--help"], ["client", "fetch", "--help"],
    ["seedbox", "run", "--help"], ["hosts", "add", "--help"], ["demo", "--help"], ["keygen", "--help"],
])
def test_every_command_has_help(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 0
    assert "Usage" in result.stdout


HELP_SAYS = [  # (command, what its --help must say): the defaults that matter, and what a source can be
    (["seedbox", "run"], ["[default: /var/lib/modeltorrent-seedbox]", "[default: 0.0.0.0:6881]"]),
    (["client", "fetch"], ["[default: /var/lib/modeltorrent;", "[default: 0.0.0.0:6881]"]),
    (["client", "run"], ["[default: /var/lib/modeltorrent;"]),
    (["publish"], ["s3://BUCKET/PREFIX", "[default: 64MiB]", "[default: v2]"]),
    (["tracker", "serve"], ["[default: sqlite:///./modeltorrent-tracker.db;", "[default: 8000", "[default: 60]"]),
]


@pytest.mark.parametrize("args,says", HELP_SAYS, ids=[" ".join(a) for a, _ in HELP_SAYS])
def test_help_shows_the_defaults_and_lists_flags_as_flags(args: list[str], says: list[str]) -> None:
    text = " ".join(run(*args, "--help").stdout.split())  # wrapped lines joined
    for phrase in says:
        assert phrase in text
    assert "<bool>" not in text and "--help Show this message" in text


USAGE_ERRORS = [
    (["client", "fetch", "no-version"], "is not NAME@VERSION"),
    (["publish", "/does/not/exist", "--name", "a", "--version", "1"], "does not exist"),
    (["publish", ".", "--name", "a", "--version", "1", "--piece-size", "huge"], "not a size"),
    (["client", "fetch", "a@1", "--connections", "0"], "--connections"),
    (["no-such-command"], "No such command"),
    (["tracker", "serve", "--port", "70000"], "--port"),
    (["publish", ".", "--name", "a", "--version", "1", "--stripes", "0"], "--stripes"),
    (["client", "fetch", "a@1"], "tracker_url"),
    (["tracker", "serve", "--admin-token", "t", "--tls-cert", "pyproject.toml"],
     "--tls-cert and --tls-key go together"),
    (["--ca-bundle", "/does/not/exist", "client", "fetch", "a@1"], "--ca-bundle"),
]


@pytest.mark.parametrize("args,message", USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_bad_arguments_get_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert message in lines[0] and lines[0].startswith("error:")
    assert len(lines) <= 2  # the message, and at most one line of hint
    assert "Traceback" not in result.stderr


def test_the_tracker_says_when_it_is_ready_and_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import json
    import socket

    from tools.demo.procs import free_port

    port = free_port()
    env = os.environ | {"PYTHONPATH": str(REPO)}
    env.pop("MODELTORRENT_LOG", None)
    argv = [sys.executable, "-m", "tools.cli", "--log-format", "json", "tracker", "serve", "--port", str(port),
            "--admin-token", "x", "--db", f"sqlite:///{tmp_path / 't.db'}"]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) as tracker:
        try:
            assert tracker.stderr is not None
            first = json.loads(tracker.stderr.readline())  # blocks until the tracker logs; the ready line first
            assert first["level"] == "INFO" and first["message"].startswith(f"tracker ready on http://127.0.0.1:{port}")
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass  # ready means answering
            again = run("tracker", "serve", "--port", str(port), "--admin-token", "x",
                        "--db", f"sqlite:///{tmp_path / 't2.db'}")
            assert again.returncode == 1
            lines = [line for line in again.stderr.splitlines() if line.strip()]
            assert lines[0] == f"error: cannot listen on 127.0.0.1:{port}: the port is in use"
            assert lines[1].startswith("hint: ") and len(lines) == 2
        finally:
            tracker.terminate()


def test_a_bad_passkey_is_named_as_the_problem_and_is_the_only_error(tmp_path: Path, tracker_url: str) -> None:
    result = run("client", "fetch", "m@1", "--tracker", tracker_url, "--passkey", "not-a-passkey",
                 "--root", str(tmp_path / "root"), "--trust-key", "00" * 32)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0] == "error: tracker said 401: unknown or revoked passkey", result.stderr
    assert lines[1].startswith("hint: check this host's passkey") and len(lines) == 2


def test_publish_checks_the_tracker_before_hashing(tmp_path: Path, tracker_url: str) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x" * 1000)
    run("keygen", "--out", str(tmp_path / "k"))
    base = ["publish", str(tmp_path / "m"), "--name", "m", "--version", "1", "--key", str(tmp_path / "k"),
            "--tracker", tracker_url]
    wrong = run(*base, "--admin-token", "wrong")
    assert wrong.returncode == 1 and "check the admin token" in wrong.stderr
    assert "hashing" not in wrong.stderr  # refused before the first byte was read
    from tests.conftest import ADMIN

    assert run(*base, "--admin-token", ADMIN).returncode == 0
    again = run(*base, "--admin-token", ADMIN)
    assert again.returncode == 1 and "m@1 is already published" in again.stderr and "hashing" not in again.stderr
    assert run(*base, "--admin-token", ADMIN, "--republish").returncode == 0  # the same bytes: taken


def test_a_bad_admin_token_is_named_as_the_problem(tracker_url: str) -> None:
    result = run("hosts", "add", "h1", "--tracker", tracker_url, "--admin-token", "wrong")
    assert result.returncode == 1
    assert "hint: check the admin token" in result.stderr and "passkey" not in result.stderr


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    key = tmp_path / "k" / "publisher.key"
    result = run("keygen", "--out", str(key))
    assert result.returncode == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    public = (tmp_path / "k" / "publisher.key.pub").read_text().strip()
    assert public in result.stdout and len(public) == 64
    again = run("keygen", "--out", str(key))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_unreachable_tracker_is_a_clear_error(tmp_path: Path) -> None:
    result = run("hosts", "add", "h1", "--tracker", "http://127.0.0.1:9", "--admin-token", "x")
    assert result.returncode == 1
    assert "cannot reach the tracker" in result.stderr and "Traceback" not in result.stderr


def test_publish_without_a_key_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x")
    result = run("publish", str(tmp_path / "m"), "--name", "m", "--version", "1", "--tracker",
                 "http://127.0.0.1:9", "--admin-token", "x", "--key", str(tmp_path / "none.key"))
    assert result.returncode == 1
    assert "modeltorrent keygen" in result.stderr


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.bin", "w.bin"])
def test_publish_refuses_a_model_with_a_symlink_in_it(tmp_path: Path, target: str) -> None:
    model = tmp_path / "m"
    (model / "sub").mkdir(parents=True)
    (model / "w.bin").write_bytes(b"x")
    (tmp_path / "outside.bin").write_bytes(b"secret")
    (model / "sub" / "link.bin").symlink_to(target)
    key = tmp_path / "publisher.key"
    assert run("keygen", "--out", str(key)).returncode == 0
    result = run("publish", str(model), "--name", "m", "--version", "1", "--tracker", "http://127.0.0.1:9",
                 "--admin-token", "x", "--key", str(key))
    assert result.returncode == 1
    assert "link.bin is a symlink" in result.stderr and "publish real files only" in result.stderr
    assert "Traceback" not in result.stderr
