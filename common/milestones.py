"""Progress as log lines: one at each tenth of a job, not one per tick. Pure."""

from __future__ import annotations


class Milestones:
    """``passed(done)`` is the highest step (in percent) reached since the last call that reached
    one, or None: a service logs 10 %, 20 %, ... 100 % of a long job, whatever its tick rate."""

    def __init__(self, total: int, step: int = 10) -> None:
        self.total = total
        self.step = step
        self.logged = 0  # percent

    def passed(self, done: int) -> int | None:
        if self.total <= 0:
            return None
        reached = min(100, done * 100 // self.total) // self.step * self.step
        if reached <= self.logged:
            return None
        self.logged = reached
        return reached
