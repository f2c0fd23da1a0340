"""uvicorn's httptools protocol, answering ``GET /announce`` on the connection itself.

An announce is ~0.1 ms of our Python; the ASGI round around it (a scope dict, a task, a
request-response cycle object, two ``send`` coroutines, two socket writes) cost about as much
again. Announces are nearly all of a tracker's traffic, so this protocol parses them with the same
C parser and writes the whole response in one write, and hands every other request (and any
announce pipelined behind a request still being answered) to the ASGI app unchanged.

Served with ``uvicorn.run(..., http="tracker.http_fast:AnnounceProtocol")``; the app must be (or
wrap) an ``AnnounceFastPath``, whose state answers the announce. uvicorn is pinned to a minor
range in ``pyproject.toml`` because this subclass uses its parser callbacks.
"""

from __future__ import annotations

from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tracker.routes.announce import AnnounceFastPath, handle_announce

_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncache-control: no-store\r\n"


def _announce_state(app: Any) -> Any:
    """The state of the ``AnnounceFastPath`` in uvicorn's (possibly wrapped) app, or None."""
    for _ in range(8):
        if isinstance(app, AnnounceFastPath):
            return app.state
        app = getattr(app, "app", None)
    return None


class AnnounceProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state = _announce_state(self.app)
        self._answered = False  # this request was answered here: the ASGI callbacks skip it

    def on_message_begin(self) -> None:
        # The ASGI scope is built in on_headers_complete, once we know it is not an announce.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._answered = False

    def on_headers_complete(self) -> None:
        if self._state is not None and self._answer_announce():
            return
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers
        super().on_headers_complete()

    def _answer_announce(self) -> bool:
        method = self.parser.get_method()
        if method not in (b"GET", b"HEAD") or not self.url.startswith(b"/announce") or self.parser.should_upgrade():
            return False
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            return False  # answers go out in request order: queue it behind the one in flight
        parsed = httptools.parse_url(self.url)
        if parsed.path != b"/announce":
            return False
        http_version = self.parser.get_http_version()
        keep_alive = http_version != "1.0" and self.parser.should_keep_alive()
        # The User-Agent tells our clients from stock ones (tracker/lifetime.py): without it here, every
        # announce answered on this path was taken for a stock client's and a dead host of ours stayed
        # listed 900 s (seen: a killed stripe gateway never taken over).
        agent = next((v for k, v in self.headers if k.lower() == b"user-agent"), b"").decode("latin-1")
        body = handle_announce(self._state, parsed.query or b"", self.client[0] if self.client else "0.0.0.0", agent)
        out = [_HEAD]
        for name, value in self.server_state.default_headers:  # server, date: as on every other answer
            out += [name, b": ", value, b"\r\n"]
        out.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        if method == b"GET":
            out.append(body)
        self.transport.write(b"".join(out))
        self._answered = True
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()
        return True

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._answered:
            super().on_message_complete()
