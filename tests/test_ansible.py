"""The Ansible roles and rollout playbook (ansible/): linted (production profile), syntax-checked,
and run for real against hosts on this machine (local connection, one directory per host, the
non-systemd `process` service mode): tracker, seedbox and four agents in two racks installed into a
virtualenv from a wheel of this checkout, a version rolled out rack by rack, a second run changing
nothing, a failing health check stopping the rollout at its rack, and a fixed rerun finishing it."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from common import signing
from tests.conftest import write_model
from tools.demo.procs import REPO, free_port

ANSIBLE = REPO / "ansible"
RACKS = {"r1": ["h1", "h2"], "r2": ["h3", "h4"]}
NAME = "llm"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0"}
    return subprocess.run(argv, cwd=ANSIBLE, env=env, capture_output=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def test_the_roles_and_playbooks_pass_ansible_lint_production_profile() -> None:
    result = run(["ansible-lint", "--offline", "--profile", "production"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_the_playbooks_pass_syntax_check_against_the_example_inventory() -> None:
    result = run(["ansible-playbook", "-i", "inventory.example.yml", "--syntax-check", "site.yml", "rollout.yml"])
    assert result.returncode == 0, result.stdout + result.stderr


class Fleet:
    """A tracker, a seedbox and four agents as inventory hosts on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = root / "publisher.key"
        self.public = signing.generate_key(self.key)
        self.inventory = root / "inventory.yml"
        wheels = root / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                       check=True, capture_output=True)

        def host(name: str, **extra: object) -> dict[str, object]:
            home = root / "hosts" / name
            return {"modeltorrent_config_dir": str(home / "etc"), "modeltorrent_run_dir": str(home / "run")} | extra

        self.hosts = [h for rack in RACKS.values() for h in rack]
        inventory = {"all": {
            "vars": {
                "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                "modeltorrent_user": getpass.getuser(), "modeltorrent_venv": str(root / "venv"),
                "modeltorrent_pip_extra_args": f"--find-links {wheels}",
                "modeltorrent_service_manager": "process", "modeltorrent_tracker_url": self.url,
                "modeltorrent_admin_token": self.token, "modeltorrent_trusted_keys": [self.public],
                "modeltorrent_prometheus_file_sd_dir": str(root / "file_sd"), "modeltorrent_dc": "dc1",
                "modeltorrent_pod": "pod1", "modeltorrent_client_poll_interval": 1,
            },
            "children": {
                "modeltorrent_tracker": {"hosts": {"tracker": host(
                    "tracker", modeltorrent_rack="ctl", modeltorrent_tracker_listen_host="127.0.0.1",
                    modeltorrent_tracker_port=self.port, modeltorrent_tracker_workers=1,
                    modeltorrent_tracker_interval=5,
                    modeltorrent_tracker_data_dir=str(root / "hosts" / "tracker" / "data"))}},
                "modeltorrent_seedbox": {"hosts": {"seedbox": host(
                    "seedbox", modeltorrent_rack="ctl", modeltorrent_seedbox_listen=f"127.0.0.1:{free_port()}",
                    modeltorrent_seedbox_metrics_listen=f"127.0.0.1:{free_port()}",
                    modeltorrent_seedbox_workdir=str(root / "hosts" / "seedbox" / "pieces"))}},
                "modeltorrent_clients": {"children": {
                    f"rack_{rack}": {"vars": {"modeltorrent_rack": rack}, "hosts": {h: host(
                        h, modeltorrent_client_root=str(self.models(h)),
                        modeltorrent_client_listen=f"127.0.0.1:{free_port()}",
                        modeltorrent_client_metrics_listen=f"127.0.0.1:{free_port()}") for h in members}}
                    for rack, members in RACKS.items()}},
            },
        }}
        self.inventory.write_text(yaml.safe_dump(inventory))
        self.outputs: list[str] = []

    def models(self, host: str) -> Path:
        return self.root / "hosts" / host / "models"

    def playbook(self, name: str, *extra: str) -> tuple[int, str, dict[str, int]]:
        """Run a playbook; its exit code, output and changed count per host."""
        result = run(["ansible-playbook", "-i", str(self.inventory), name, *extra], timeout=900)
        out = result.stdout + result.stderr
        self.outputs.append(out)
        return result.returncode, out, {m[1]: int(m[3]) for m in RECAP.finditer(result.stdout)}

    def publish(self, version: str, seed: int) -> None:
        model = write_model(self.root / "external" / version, {"a.safetensors": 3 << 20, "b.safetensors": 5 << 20},
                            seed=seed)
        subprocess.run([sys.executable, "-m", "tools.cli", "publish", str(model), "--name", NAME, "--version", version,
                        "--tracker", self.url, "--key", str(self.key), "--admin-token", self.token,
                        "--piece-size", "1MiB"], check=True, capture_output=True, cwd=REPO)

    def current(self, host: str) -> str | None:
        link = self.models(host) / NAME / "current"
        return os.readlink(link) if link.is_symlink() else None

    def stop(self) -> None:
        for pidfile in self.root.glob("hosts/*/run/*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pidfile.read_text()), signal.SIGTERM)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    if subprocess.run(["ansible-playbook", "--version"], capture_output=True).returncode != 0:
        pytest.fail("ansible-playbook is not installed: pip install -c requirements.lock -e '.[test]'")
    fleet = Fleet(tmp_path)
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.mark.integration
def test_rollout_installs_the_fleet_and_activates_a_version_rack_by_rack_idempotently(fleet: Fleet) -> None:
    code, out, changed = fleet.playbook("site.yml")
    assert code == 0, out
    assert set(changed) == {"tracker", "seedbox", *fleet.hosts} and all(changed.values())
    fleet.publish("v1", seed=1)

    code, out, changed = fleet.playbook("rollout.yml", "-e", f"model={NAME}", "-e", "version=v1",
                                        "-e", "modeltorrent_rollout_poll=1", "-e", "modeltorrent_rollout_timeout=300")
    assert code == 0, out
    assert {h: fleet.current(h) for h in fleet.hosts} == {h: "versions/v1" for h in fleet.hosts}
    assert re.search(r"rack r1: deployment \d+ is activated; 2 of 2 hosts healthy", out), out
    assert out.index("rack r1: deployment") < out.index("rack r2: deployment")  # one rack after the other
    assert changed["seedbox"] > 0 and changed["tracker"] > 0  # the seed service, the deployments
    # Every agent reported its rack to the tracker and has a scrape target labelled with it.
    located = {h["host"]: h["location"] for j in httpx.get(f"{fleet.url}/api/deployments").json()
               for h in httpx.get(f"{fleet.url}/api/deployments/{j['id']}").json()["hosts"]}
    assert located == {h: f"dc1|pod1|{rack}" for rack, members in RACKS.items() for h in members}
    for rack, members in RACKS.items():
        for h in members:
            target = json.loads((fleet.root / "file_sd" / f"modeltorrent-client-{h}.json").read_text())
            assert target[0]["labels"] | {"rack": rack, "role": "client", "host": h} == target[0]["labels"]

    # Again: nothing to change anywhere.
    code, out, changed = fleet.playbook("rollout.yml", "-e", f"model={NAME}", "-e", "version=v1",
                                        "-e", "modeltorrent_rollout_poll=1")
    assert code == 0, out
    assert changed == {h: 0 for h in ["tracker", "seedbox", *fleet.hosts]}, out

    # Version 2 with h1 failing its health check: the rollout stops at rack r1 with a report;
    # rack r2 is not touched.
    fleet.publish("v2", seed=2)
    (fleet.models("h1") / NAME / "unhealthy").touch()
    check = ('test ! -e "$(dirname "$MODELTORRENT_CURRENT")/unhealthy" && '
             'test "$(readlink "$MODELTORRENT_CURRENT")" = "versions/$MODELTORRENT_VERSION"')
    args = ["-e", f"model={NAME}", "-e", "version=v2", "-e", "modeltorrent_rollout_poll=1",
            "-e", json.dumps({"modeltorrent_rollout_health_check": check})]
    code, out, _ = fleet.playbook("rollout.yml", *args)
    assert code != 0
    assert "stopping the rollout of llm@v2 at rack r1: 1 of 2 hosts failed" in out, out
    assert "h1: health check failed" in out and "racks after it were not touched" in out
    assert fleet.current("h3") == fleet.current("h4") == "versions/v1"
    deployed = {tuple(sorted(h["host"] for h in httpx.get(f"{fleet.url}/api/deployments/{j['id']}").json()["hosts"]))
                for j in httpx.get(f"{fleet.url}/api/deployments").json() if j["version"] == "v2"}
    assert deployed == {("h1", "h2")}

    # Fixed: the rerun resumes and finishes every rack.
    (fleet.models("h1") / NAME / "unhealthy").unlink()
    code, out, _ = fleet.playbook("rollout.yml", *args)
    assert code == 0, out
    assert {h: fleet.current(h) for h in fleet.hosts} == {h: "versions/v2" for h in fleet.hosts}

    # Passkeys never reached the output, even though every task that handled one ran.
    passkeys = [httpx.post(f"{fleet.url}/api/hosts", json={"name": h, "location": f"dc1|pod1|{rack}"},
                           headers={"authorization": f"Bearer {fleet.token}"}).json()["passkey"]
                for rack, members in RACKS.items() for h in members]
    assert not [p for p in passkeys if any(p in o for o in fleet.outputs)]
