"""CPU time of running processes and of each of their threads, read from ``/proc``.

A process's total CPU says how many cores a host needs for a rate; its busiest thread says the rate
no core count lifts, since one thread runs on one core at a time. ``Sampler`` looks at every
thread of the processes it is given every ``period`` seconds (a thread's time is kept at the last
look before it ends); ``os.wait4`` gives the exact total of a process that has exited.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """CPU seconds used by one process, by thread, and its peak resident memory so far."""

    cpu: float = 0.0
    threads: dict[int, tuple[str, float]] = field(default_factory=dict)  # tid -> (name, CPU seconds)
    peak_rss: int = 0  # bytes
    # Of that, memory of its own (RssAnon), the largest seen: libtorrent maps the torrent's files, so
    # RSS also counts the page cache of every file page it touched, which the kernel can drop.
    peak_anon: int = 0

    def since(self, before: Usage) -> Usage:
        """What was used between ``before`` and this look (threads that started since count whole)."""
        threads = {tid: (name, cpu - before.threads.get(tid, ("", 0.0))[1])
                   for tid, (name, cpu) in self.threads.items()}
        return Usage(self.cpu - before.cpu, threads, self.peak_rss, self.peak_anon)

    @property
    def busiest(self) -> tuple[str, float]:
        """The thread that used the most CPU: (name, seconds)."""
        return max(self.threads.values(), key=lambda t: t[1], default=("-", 0.0))


def _cpu_of_stat(text: str) -> float:
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def look(pid: int) -> Usage | None:
    """The process's usage now; None once it is gone."""
    proc = Path(f"/proc/{pid}")
    try:
        cpu = _cpu_of_stat((proc / "stat").read_text())
        status = {line.split(":")[0]: line for line in (proc / "status").read_text().splitlines()}
        rss, anon = (int(status[k].split()[1]) * 1024 if k in status else 0 for k in ("VmHWM", "RssAnon"))
        threads = {}
        for task in (proc / "task").iterdir():
            try:
                stat = (task / "stat").read_text()
            except OSError:  # ended between the listing and the read
                continue
            name = "main" if int(task.name) == pid else stat[stat.index("(") + 1:stat.rindex(")")]
            threads[int(task.name)] = (name, _cpu_of_stat(stat))
    except (OSError, ValueError):
        return None
    return Usage(cpu, threads, rss, anon)


class Sampler:
    """Looks at processes in the background; ``usage(pid)`` is the latest look (threads that ended
    keep their last time)."""

    def __init__(self, period: float = 0.1) -> None:
        self.period = period
        self._pids: set[int] = set()
        self._latest: dict[int, Usage] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)
        self._look(pid)

    def usage(self, pid: int) -> Usage:
        self._look(pid)
        with self._lock:
            return self._latest.get(pid, Usage())

    def _look(self, pid: int) -> None:
        now = look(pid)
        if now is None:
            return
        with self._lock:
            before = self._latest.get(pid)
            if before:  # keep ended threads, at their last time
                now = Usage(now.cpu, before.threads | now.threads, max(now.peak_rss, before.peak_rss),
                            max(now.peak_anon, before.peak_anon))
            self._latest[pid] = now

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            with self._lock:
                pids = list(self._pids)
            for pid in pids:
                self._look(pid)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def wait_exited(pid: int, timeout: float, meanwhile: Callable[[], object] | None = None) -> tuple[int, float, int]:
    """Wait for a child; its (exit code, CPU seconds, peak RSS bytes) as the kernel counted them.
    ``meanwhile`` is called at each look while it runs. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        if meanwhile:
            meanwhile()
        done, status, rusage = os.wait4(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss * 1024
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} did not exit in {timeout:.0f} s")
        time.sleep(0.05)
