"""What a host's CPU lets it move, from the data-plane benchmark's figures (pure).

``python -m tools.bench.dataplane`` measures, on loopback with no caps, the CPU seconds per GiB a
client spends receiving (its whole process) and the seedbox spends sending (its upload), and the
same for each one's busiest thread. In a swarm a host receives the model and sends about as much
(all hosts together send what they receive, less what the seedbox sends), so a host moving r bytes
a second each way spends r x (receive + send cost) of CPU, and its busiest thread, which one core
runs, r x (receive + send cost of that thread) per libtorrent session. The ceiling is the rate
where the first of the two runs out: ``cores`` for the process, one core per session's thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GIB = 1 << 30


@dataclass(frozen=True)
class HostCost:
    receive_cpu: float  # CPU-s per GiB received, the whole client process
    receive_thread: float  # CPU-s per GiB received, its busiest thread
    send_cpu: float  # CPU-s per GiB sent (the seedbox's upload to one client)
    send_thread: float

    @classmethod
    def from_dataplane(cls, doc: dict[str, Any]) -> HostCost:
        """From ``results/dataplane/report.json``: the "one client" stage's client and seedbox rows.
        Raises ValueError if they are not there."""
        rows = {(r["stage"], r["process"]): r for r in doc.get("rows", [])}
        try:
            client, seedbox = rows[("one client", "client h0")], rows[("one client", "seedbox (upload)")]
        except KeyError as exc:
            raise ValueError(f"no {exc.args[0]} row in the data-plane figures (run tools.bench.dataplane)") from exc
        return cls(client["cpu_per_gib"], client["busiest_per_gib"], seedbox["cpu_per_gib"],
                   seedbox["busiest_per_gib"])

    def ceiling(self, cores: float, sessions: int = 1) -> float:
        """Bytes/s a host can receive while sending as much, on ``cores`` cores with ``sessions``
        libtorrent sessions (each with its own network thread)."""
        if cores <= 0 or sessions < 1:
            raise ValueError("cores must be positive and sessions at least 1")
        by_cpu = cores / (self.receive_cpu + self.send_cpu)
        by_thread = sessions / (self.receive_thread + self.send_thread)
        return GIB * min(by_cpu, by_thread)

    def describe(self, cores: float, sessions: int = 1) -> str:
        gbit = self.ceiling(cores, sessions) * 8 / 1e9
        return (f"{gbit:.1f} Gbit/s each way: receiving {self.receive_cpu:.2f} + sending {self.send_cpu:.2f} CPU-s/GiB "
                f"on {cores:g} cores, busiest thread {self.receive_thread:.2f} + {self.send_thread:.2f} CPU-s/GiB "
                f"x {sessions} session(s)")
