"""A fetch that cannot reach the tracker at its start keeps asking, with backoff, for a while (a
host restarted while the tracker restarts: seen in the soak); a refusal is final at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.fetch import Fetcher
from client.settings import ClientSettings
from common.errors import ApiError

UNREACHABLE = ApiError("cannot reach the tracker at http://t: [Errno 111] Connection refused")


class Flaky:
    def __init__(self, failures: list[ApiError]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "manifest"


@pytest.mark.parametrize(("failures", "wait", "calls", "raises"), [
    ([], 5.0, 1, False),
    ([UNREACHABLE, UNREACHABLE], 30.0, 3, False),  # the tracker back after two attempts
    ([ApiError("tracker said 404: no such version", 404)], 30.0, 1, True),  # an answer: final
    ([UNREACHABLE] * 50, 0.0, 1, True),  # tracker_wait 0: no retry
])
def test_the_start_of_a_fetch_waits_for_an_unreachable_tracker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: list[ApiError], wait: float, calls: int,
        raises: bool) -> None:
    monkeypatch.setattr("tracker.api_client.time.sleep", lambda _s: None)
    settings = ClientSettings(tracker_url="http://t", passkey="k", root=tmp_path, tracker_wait=wait)  # type: ignore[arg-type]
    fetcher = Fetcher(settings, api=None)  # type: ignore[arg-type]
    call = Flaky(list(failures))
    if raises:
        with pytest.raises(ApiError):
            fetcher._ask(call)
    else:
        assert fetcher._ask(call) == "manifest"
    assert call.calls == calls
