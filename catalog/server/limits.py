"""How long and how many: the connection-level bounds of `catalog serve`
(docs/engine-api.md §7.2).

uvicorn's own bounds cannot keep a few hundred idle or slowly-sending connections from
shutting everyone else out: its concurrency limit counts idle connections, answering
every newcomer 503 for as long as they stay, and its keep-alive timeout starts only once
a response is sent and stops at the first byte of the next request, so a client that
sends a byte every few seconds holds its connection for ever. `GuardedH11Protocol` (the
h11 protocol of uvicorn, which `catalog serve` always uses) adds what Go's http.Server,
nginx and Apache's mod_reqtimeout have:

- `idle_timeout`: a connection waiting for a request (a new one, or between requests)
  is closed after this long;
- `header_timeout`: a request line and headers must be complete this long after their
  first byte;
- a request body must keep coming while the server reads it: no pause longer than
  `body_idle_timeout`, and past that much time, on average at least `body_min_rate`
  bytes a second (a big archive over a slow link is fine, a byte a second is not). A
  body that stalls is answered 408 with Docker's JSON error, and the connection closed;
- `send_timeout`: a client that stops reading a response for this long is cut off;
- a request answered before its body was read (an error) may send 1 MiB more, read and
  dropped so that it sees the answer; a body that goes on is cut off;
- `max_connections`: a connection that would exceed it makes room by closing the one
  that has waited longest for a request; a connection with a request in progress is
  never taken. Only when every connection is busy is the newcomer closed.

Time the server itself is not reading (flow control paused the socket while the handler
catches up) never counts against a client. Closing for the idle and header timeouts is
silent, as Go's server does. How many requests run at once is bounded separately, by
`catalog.server.middleware.RequestLimit`, which answers Docker's JSON 503.

This leans on uvicorn's H11Protocol (`conn`, `cycle`, `flow`, `transport` and the
hooks below); tests/server/test_serving.py exercises every rule against a real socket.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from catalog.server import documents

__all__ = ["ConnectionGuard", "ConnectionLimits", "GuardedConfig", "GuardedH11Protocol"]

logger = logging.getLogger("catalog.server")

# Body bytes read and dropped after a request was answered early (Go's server: 256 KiB).
LINGER_BYTES = 1 << 20


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections and requests, and how long each phase of a request may
    take (seconds; rates in bytes per second)."""

    max_connections: int = 256
    max_requests: int = 128
    idle_timeout: float = 30.0
    header_timeout: float = 10.0
    body_idle_timeout: float = 30.0
    body_min_rate: int = 1024
    send_timeout: float = 60.0

    @property
    def sweep_interval(self) -> float:
        """How often deadlines are checked: often enough for the shortest of them."""
        shortest = min(
            self.idle_timeout, self.header_timeout, self.body_idle_timeout, self.send_timeout
        )
        return max(min(shortest / 5, 1.0), 0.01)


class ConnectionGuard:
    """The connections of one server: admits new ones (evicting the longest-waiting idle
    one past `max_connections`) and closes those past a deadline, from a timer that runs
    while there are connections."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.protocols: set[GuardedH11Protocol] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.evicted = 0
        self.timed_out = 0

    def admit(self, protocol: GuardedH11Protocol, loop: asyncio.AbstractEventLoop) -> None:
        self.protocols.add(protocol)
        excess = len(self.protocols) - self.limits.max_connections
        if excess > 0:
            waiting = sorted(
                (p for p in self.protocols if p is not protocol and p.idle_since is not None),
                key=lambda p: p.idle_since or 0.0,
            )
            victims = waiting[:excess]
            if len(victims) < excess:
                victims.append(protocol)  # every other connection is serving a request
            for victim in victims:
                self.evicted += 1
                victim.close_quietly()
        if self._timer is None:
            self._timer = loop.call_later(self.limits.sweep_interval, self._sweep, loop)

    def release(self, protocol: GuardedH11Protocol) -> None:
        self.protocols.discard(protocol)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        for protocol in list(self.protocols):
            try:
                protocol.check_deadlines(now)
            except Exception:  # one broken connection must not stop the sweeps
                logger.exception("checking a connection's deadlines failed")
                protocol.close_quietly()
        if self.protocols:
            self._timer = loop.call_later(self.limits.sweep_interval, self._sweep, loop)


class GuardedConfig(uvicorn.Config):
    """uvicorn's settings, plus the guard every connection of the server reports to."""

    def __init__(self, app: Any, *, limits: ConnectionLimits, **options: Any) -> None:
        super().__init__(
            app,
            http=GuardedH11Protocol,
            limit_concurrency=None,  # RequestLimit answers Docker's JSON instead
            timeout_keep_alive=int(max(limits.idle_timeout, 1)),
            **options,
        )
        self.guard = ConnectionGuard(limits)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol under the deadlines and the admission rule above."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        guard = getattr(config, "guard", None)
        if not isinstance(guard, ConnectionGuard):
            raise TypeError("GuardedH11Protocol needs a GuardedConfig")
        self.guard = guard
        # Waiting for a request, none of it received yet (None: a request is under way).
        self.waiting_since: float | None = None
        self._head_since: float | None = None  # the first byte of a request's head
        self._body_since: float | None = None  # a request's head complete, body to come
        self._body_bytes = 0
        self._body_active = 0.0  # seconds spent reading the body while not paused
        self._body_last = 0.0  # last body bytes, or the end of a pause
        self._clock = 0.0  # last deadline check of this body
        self._write_paused_since: float | None = None
        self._dropped = 0  # body bytes that arrived after the answer

    @property
    def idle_since(self) -> float | None:
        """Since when the connection has had no request under way (None: it has one)."""
        return self.waiting_since if self.waiting_since is not None else self._head_since

    # --- the protocol's hooks ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.waiting_since = self.loop.time()
        self.guard.admit(self, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = self.loop.time()
        before = self.conn.their_state
        if before is h11.IDLE and self._head_since is None:
            self._head_since, self.waiting_since = now, None
        elif before is h11.SEND_BODY:
            self._body_bytes += len(data)
            self._body_last = now
            if self.cycle is not None and self.cycle.response_complete:
                # Answered (an error, most likely) before the body was read: the rest is
                # read and dropped for a while, as Go's server does, so that the client
                # sees the answer; a body that goes on past that is cut off.
                self._dropped += len(data)
                if self._dropped > LINGER_BYTES:
                    self._timed_out("the request body went on after the answer")
                    self.close_quietly()
                    return
        super().data_received(data)
        self._follow(now)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next request, pipelined
        self._follow(self.loop.time())

    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_paused_since = self.loop.time()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_paused_since = None

    # --- state and deadlines ---

    def _follow(self, now: float) -> None:
        """Update the phase from h11's view of the client's side."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._head_since is None and self.waiting_since is None:
                self.waiting_since = now
            self._body_since = None
            return
        self.waiting_since = None
        self._head_since = None
        if state is h11.SEND_BODY:
            if self._body_since is None:
                self._body_since = self._body_last = self._clock = now
                self._body_bytes, self._body_active, self._dropped = 0, 0.0, 0
        else:
            self._body_since = None

    def check_deadlines(self, now: float) -> None:
        if self.transport.is_closing():
            return
        limits = self.guard.limits
        if self._write_paused_since is not None:
            if now - self._write_paused_since > limits.send_timeout:
                self._timed_out("the client stopped reading the response")
                self.transport.abort()
            return
        if self._head_since is not None:
            if now - self._head_since > limits.header_timeout:
                self._timed_out("the request's headers did not arrive in time")
                self.close_quietly()
            return
        if self.waiting_since is not None:
            if now - self.waiting_since > limits.idle_timeout:
                self.close_quietly()
            return
        if self._body_since is None or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:  # the server is not reading: not the client's fault
            self._body_last = self._clock = now
            return
        self._body_active += now - self._clock
        self._clock = now
        grace = limits.body_idle_timeout
        stalled = now - self._body_last > grace
        too_slow = self._body_bytes < limits.body_min_rate * (self._body_active - grace)
        if stalled or too_slow:
            self._timed_out("the request body did not arrive in time")
            self._reply_and_close(
                408,
                "the request body did not arrive in time (at least "
                f"{limits.body_min_rate} bytes a second, no pause over {grace:g} seconds)",
            )

    def _timed_out(self, what: str) -> None:
        self.guard.timed_out += 1
        client = "%s:%s" % self.client if self.client else "a unix socket client"  # noqa: UP031
        logger.info("closing the connection of %s: %s", client, what)

    def close_quietly(self) -> None:
        """Close without a response (a connection between requests, or a silent one)."""
        if not self.transport.is_closing():
            self.transport.close()

    def _reply_and_close(self, status: int, message: str) -> None:
        """Answer Docker's JSON error if no response has started, then close; the handler
        still running sees the client as gone."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and not cycle.disconnected:
            cycle.disconnected = True
            cycle.message_event.set()
            if self.conn.our_state is h11.SEND_RESPONSE:
                body = documents.go_json({"message": message})
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]
                try:
                    for event in (
                        h11.Response(status_code=status, headers=headers),
                        h11.Data(data=body),
                        h11.EndOfMessage(),
                    ):
                        self.transport.write(self.conn.send(event) or b"")
                except h11.LocalProtocolError:
                    pass  # h11 will not let us answer now: close without one
        self.close_quietly()
