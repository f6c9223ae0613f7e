"""Keepalive: a ping every ``ping_interval``; no pong within ``ping_timeout`` closes with 1011."""

from __future__ import annotations

import logging
import os
import time

from ..protocol.closecodes import CloseCode
from ..protocol.core import ReadyState
from .conn_base import _ConnectionBase

__all__ = ["_Keepalive"]

logger = logging.getLogger("wsevents")


class _Keepalive(_ConnectionBase):
    """One timer, either "next ping" or "pong deadline"; the round trip goes to ``latency``."""

    __slots__ = ()

    def _init_keepalive(self) -> None:
        self._ka_timer = None
        self._ka_payload = None
        self._ka_sent = 0.0

    def _keepalive_ping(self) -> None:
        self._ka_timer = None
        if self._ready_state is not ReadyState.OPEN or self._core is None:
            return
        payload = os.urandom(4)
        self._ka_payload = payload
        # Not loop.time(): uvloop's is cached per iteration, in milliseconds, so a
        # loopback round trip would measure 0.
        self._ka_sent = time.perf_counter()
        self._core.send_ping(payload)
        self._core.write_to(self._write)
        timeout = self._options.ping_timeout
        if timeout is not None:
            self._ka_timer = self._later(timeout, self._keepalive_expired)

    def _keepalive_expired(self) -> None:
        self._ka_timer = None
        logger.info("keepalive ping timeout: %r", self)
        self._host.count("keepalive_timeouts")
        self._abandon(CloseCode.INTERNAL_ERROR.value, "keepalive ping timeout")

    def _pong(self, payload: bytes) -> None:
        if self._ka_payload is not None and payload == self._ka_payload:
            # Our keepalive's answer: measure, schedule the next one, tell nobody.
            self._ka_payload = None
            self.latency = time.perf_counter() - self._ka_sent
            self._host.keepalive_rtt(self.latency)
            if self._ka_timer is not None:
                self._ka_timer.cancel()
            interval = self._options.ping_interval
            if interval is not None and self._ready_state is ReadyState.OPEN:
                self._ka_timer = self._later(interval, self._keepalive_ping)
            return
        self._emit_safe("pong", payload.decode("utf-8", "replace"))

