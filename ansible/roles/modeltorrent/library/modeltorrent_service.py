#!/usr/bin/python
"""Ansible module: run a modeltorrent service as a plain background process, for hosts without
systemd (containers, CI, laptops). It keeps a pidfile, checks the process behind it is still the
same command, and reports a change only when it starts, restarts or stops something."""

from __future__ import annotations

DOCUMENTATION = r"""
module: modeltorrent_service
short_description: Run a modeltorrent service as a background process (the non-systemd service mode)
description:
  - Starts, restarts or stops a long-running command, detached in its own session, with its output
    appended to C(run_dir/name.log) and its pid in C(run_dir/name.pid).
  - A process counts as running only if the pid is alive and its command line is the one asked for,
    so a recycled pid is not mistaken for the service.
options:
  name: {description: Service name (file names in run_dir)., type: str, required: true}
  command:
    description: The command and its arguments (required unless stopping).
    type: list
    elements: str
    default: []
  env_file:
    description: >-
      KEY=VALUE lines added to the environment (as systemd's EnvironmentFile); keep secrets here,
      not in argv.
    type: path
  run_dir: {description: Where the pidfile and the log go., type: path, required: true}
  chdir: {description: Working directory., type: path}
  state: {description: Wanted state., type: str, choices: [started, restarted, stopped], default: started}
  startup_wait:
    description: Seconds the process must stay alive after a start to count as started.
    type: float
    default: 1.0
author: modeltorrent
"""

import contextlib
import os
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


def _read_env(path: str | None) -> dict[str, str]:
    env: dict[str, str] = {}
    if not path:
        return env
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                env[key.strip()] = value.strip().strip('"')
    return env


def _running(pidfile: str, command: list[str]) -> int | None:
    """The pid behind ``pidfile`` if that process is alive and runs ``command`` (any, if empty)."""
    try:
        with open(pidfile, encoding="utf-8") as fh:
            pid = int(fh.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = [part.decode() for part in fh.read().split(b"\0") if part]
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            zombie = fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, ValueError):
        return None
    # A script's interpreter comes first in its command line (the kernel runs the shebang line).
    return pid if (not command or cmdline[-len(command):] == command) and not zombie else None


def _stop(pid: int, timeout: float = 30.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _start(module: AnsibleModule, command: list[str], pidfile: str, log: str) -> int:
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "HOME", "TZ") if key in os.environ}
    env.update(_read_env(module.params["env_file"]))
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=module.params["chdir"], env=env, start_new_session=True, close_fds=True)
    with open(pidfile, "w", encoding="utf-8") as fh:
        fh.write(f"{proc.pid}\n")
    time.sleep(module.params["startup_wait"])
    if proc.poll() is not None:
        with open(log, "rb") as fh:
            tail = fh.read()[-2000:].decode(errors="replace")
        module.fail_json(msg=f"{module.params['name']} exited at once with code {proc.returncode}; "
                             f"the end of {log}:\n{tail}")
    return proc.pid


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "command": {"type": "list", "elements": "str", "default": []},
            "env_file": {"type": "path"},
            "run_dir": {"type": "path", "required": True},
            "chdir": {"type": "path"},
            "state": {"type": "str", "choices": ["started", "restarted", "stopped"], "default": "started"},
            "startup_wait": {"type": "float", "default": 1.0},
        },
        required_if=[("state", "started", ["command"]), ("state", "restarted", ["command"])],
        supports_check_mode=True,
    )
    name, command, state = module.params["name"], module.params["command"], module.params["state"]
    os.makedirs(module.params["run_dir"], exist_ok=True)
    pidfile = os.path.join(module.params["run_dir"], f"{name}.pid")
    log = os.path.join(module.params["run_dir"], f"{name}.log")
    pid = _running(pidfile, command)
    if state == "started" and pid is not None:
        module.exit_json(changed=False, pid=pid, log=log)
    if state == "stopped" and pid is None:
        module.exit_json(changed=False, log=log)
    if module.check_mode:
        module.exit_json(changed=True, log=log)
    if pid is not None:
        _stop(pid)
    if state == "stopped":
        os.unlink(pidfile)
        module.exit_json(changed=True, log=log)
    module.exit_json(changed=True, pid=_start(module, command, pidfile, log), log=log)


if __name__ == "__main__":
    main()
