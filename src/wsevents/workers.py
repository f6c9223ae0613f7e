"""Workers: N processes serving one port, under a supervisor (:func:`serve`).

The supervisor (the process that calls :func:`serve`) binds the listening
sockets, then forks the workers; each worker runs its own event loop and
server on the socket it inherited. The supervisor runs no event loop: it
waits for signals and for its children, and

* restarts a worker that dies, logging why (at once if it had been up for a
  while; after a growing delay, up to 30 s, if it keeps dying soon after it
  starts);
* on SIGINT or SIGTERM, sends SIGTERM to every worker, each of which closes
  every connection with 1001 and exits; the supervisor returns once all have
  (a worker still running ``_STOP_GRACE`` seconds later is killed);
* stops everything if a worker fails before it ever listened (a handler that
  cannot be imported, a broker that is unreachable at start...): a start-up
  error is reported once rather than restarted forever.

Sockets: on Linux (and wherever ``SO_REUSEPORT`` exists) the supervisor binds
one socket per worker, all on the same port with ``SO_REUSEPORT``, so the
kernel spreads incoming connections evenly across the workers (one shared
socket would wake every worker on each connection and let the quickest take
most of them). It keeps those sockets open: a worker that is restarted gets
the same socket back, with the connections waiting in its queue. Elsewhere,
every worker inherits one shared listening socket, which works on any POSIX
system. Workers are made with ``os.fork`` (POSIX only).

Every worker sets ``WSEVENTS_WORKER`` in its environment to its index (0 to
N-1; :func:`worker_index` reads it back).

Metrics: ``server.metrics`` of a worker are its own, labelled ``worker``; the
worker that answers a scrape of ``/metrics`` (``metrics_handler``) serves
the sum of every worker's, which the supervisor gathers over a Unix socket
pair per worker (:mod:`wsevents.worker_metrics`).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from .aio import runner
from .aio.broker_option import make_broker
from .aio.server import Server
from .aio.server_api import listen_socket, loop_of
from .api import create_server
from .worker_metrics import MetricsHub, WorkerLink
from .worker_sockets import bind_worker_sockets

__all__ = ["serve", "serve_servers", "worker_index"]

logger = logging.getLogger("wsevents.workers")

# A worker that dies sooner than this after it started counts as dying in a loop.
_STABLE_AFTER = 5.0
_MAX_DELAY = 30.0
# After SIGTERM, how long a worker has to close its connections before it is killed.
_STOP_GRACE = 15.0


def worker_index() -> int | None:
    """The index (0 to N-1) of the worker this code runs in, or None outside workers."""
    value = os.environ.get("WSEVENTS_WORKER")
    return int(value) if value is not None and value.isdigit() else None


def serve(
    handler: Callable[..., Any],
    port: int = 0,
    host: str | None = None,
    *,
    workers: int = 1,
    broker: Any = None,
    ready: Callable[[int], Any] | None = None,
    **options: Any,
) -> None:
    """Serve ``handler`` on ``port`` in ``workers`` processes until SIGINT or SIGTERM.

    ``handler`` is called with each new :class:`~wsevents.Connection`, as a
    ``"connection"`` listener (a plain function, or an ``async`` one that
    runs as a task). ``broker`` (a URL such as ``"redis://127.0.0.1:6379/0"``,
    or a broker object) and ``options`` go to :func:`~wsevents.create_server`
    in every worker. ``ready`` is called in this process with the port once
    every worker listens (``port`` 0 picks a free one).

    With ``workers=1`` the server runs in this process (as
    :func:`wsevents.run` would run it). With more, this process supervises
    that many forked workers (see :mod:`wsevents.workers`): define the
    handler at import time, but create no server or connection before
    calling ``serve``. Returns once every worker has exited.

    Raises:
        ValueError: ``workers`` is below 1, or above 1 without a ``broker``
            (``broadcast`` and rooms would each reach one worker's
            connections only), or ``broker`` is not a valid URL.
        ImportError: ``broker`` is a Redis URL and redis-py is not installed.
        OSError: the port cannot be bound.
        RuntimeError: a worker failed before it listened (its error is logged).
    """
    _check(workers, broker is not None)
    if broker is not None:
        # A bad URL (or redis-py missing) fails here, once, rather than in every worker.
        make_broker(broker, options.get("cluster", "wsevents"))
        options["broker"] = broker
    serve_servers(lambda: create_server(handler, **options), port, host, workers=workers, ready=ready)


def serve_servers(
    make_server: Callable[[], Server],
    port: int = 0,
    host: str | None = None,
    *,
    workers: int = 1,
    ready: Callable[[int], Any] | None = None,
) -> None:
    """As :func:`serve`, with a server made by ``make_server()`` in each worker.

    ``make_server`` returns a :class:`~wsevents.Server` that does not listen
    yet (made with ``create_server``: its handlers, options and broker); it is
    called once in each worker, after the fork. With more than one worker,
    a server without a broker makes its worker fail at start, and so
    ``serve_servers`` (see :func:`serve`).
    """
    _check(workers, True)
    if workers == 1:
        _serve_here(make_server(), port, host, ready)
        return
    sockets = bind_worker_sockets(port, host, workers)
    supervisor = _Supervisor(sockets, lambda sock, index: _worker(make_server, sock, index))
    try:
        code = supervisor.run(ready)
    finally:
        for sock in set(sockets):
            sock.close()
    if code:
        raise RuntimeError(f"a worker failed before it listened (exit status {code}): see its log")


def _check(workers: int, has_broker: bool) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int of 1 or more, not {workers!r}")
    if workers > 1 and not has_broker:
        raise ValueError(_NO_BROKER.format(workers))


_NO_BROKER = ("{} workers need a broker (e.g. redis://127.0.0.1:6379/0): without one, broadcast() and "
              "rooms would each reach the connections of a single worker")


def _serve_here(server: Server, port: int, host: str | None, ready: Callable[[int], Any] | None) -> None:
    failed: list[BaseException] = []
    server.on("error", failed.append)
    server.listen(port, host, None if ready is None else lambda: ready(server.port or 0))
    runner.run()
    if failed:
        raise failed[0]


# -- the worker side ----------------------------------------------------------------------


_Work = Callable[[Callable[[], None], socket.socket], None]


def _worker(make_server: Callable[[], Server], sock: socket.socket, index: int) -> _Work:
    """What worker ``index`` runs after the fork: given ``listening``, which tells the supervisor,
    and its end of the metrics link."""

    def run(listening: Callable[[], None], link: socket.socket) -> None:
        os.environ["WSEVENTS_WORKER"] = str(index)
        # A loop made before the fork shares its selector with the supervisor: never use it here.
        runner._default_loop = None
        server = make_server()
        if getattr(server, "broker", None) is None:
            raise ValueError(_NO_BROKER.format("several"))
        WorkerLink(server.metrics, link, loop_of(server))
        listen_socket(server, sock, listening)
        runner.run()

    return run


def _child(slot: _Slot, work: _Work, link: socket.socket, others: list[int],
           mask: Iterable[int]) -> NoReturn:
    """The body of a forked worker; never returns."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for fd in others:
            with contextlib.suppress(OSError):
                os.close(fd)
        write_end = slot.pipe_w

        def listening() -> None:
            with contextlib.suppress(OSError):
                os.write(write_end, b"1")
                os.close(write_end)

        work(listening, link)
    except BaseException:
        logger.exception("worker %d (pid %d) failed", slot.index, os.getpid())
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


# -- the supervisor -----------------------------------------------------------------------


class _Slot:
    """One worker's place: its socket and its current process."""

    __slots__ = ("index", "sock", "pid", "started", "listening", "ever_listened", "failures",
                 "restart_at", "pipe_r", "pipe_w")

    def __init__(self, index: int, sock: socket.socket) -> None:
        self.index = index
        self.sock = sock
        self.pid = 0
        self.started = 0.0
        self.listening = False
        self.ever_listened = False
        self.failures = 0
        self.restart_at: float | None = None
        self.pipe_r = -1
        self.pipe_w = -1


class _Supervisor:
    """Forks the workers, restarts those that die, stops them all on SIGINT/SIGTERM."""

    def __init__(self, sockets: list[socket.socket],
                 make_work: Callable[[socket.socket, int], _Work]) -> None:
        self.slots = [_Slot(i, sock) for i, sock in enumerate(sockets)]
        self.hub = MetricsHub(len(sockets))
        self.make_work = make_work
        self.stopping = False
        self.stop_deadline = 0.0
        self.failure = 0
        self.announced = False

    def run(self, ready: Callable[[int], Any] | None) -> int:
        """Supervise until every worker has exited; the exit status of a start-up failure, else 0."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)}
        old_wakeup = signal.set_wakeup_fd(wake_w.fileno())
        self.wake_fds = [wake_r.fileno(), wake_w.fileno()]
        try:
            for slot in self.slots:
                self._start(slot)
            while any(slot.pid for slot in self.slots) or not self.stopping:
                self._wait(wake_r)
                self._reap()
                if not self.stopping:
                    self.hub.tick(time.monotonic())
                    self._restart_due()
                    self._announce(ready)
                elif time.monotonic() >= self.stop_deadline:
                    self._kill_stragglers()
        except BaseException:
            self._abandon()
            raise
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            wake_r.close()
            wake_w.close()
            for slot in self.slots:
                self._close_pipe(slot)
            self.hub.close()
        return self.failure

    def _abandon(self) -> None:
        """The supervisor itself failed: stop the workers before the error goes up."""
        self._stop()
        for slot in self.slots:
            if slot.pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(slot.pid, 0)
                slot.pid = 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum in (signal.SIGINT, signal.SIGTERM) and not self.stopping:
            logger.info("%s: stopping the workers", signal.Signals(signum).name)
            self._stop()

    def _stop(self) -> None:
        self.stopping = True
        self.stop_deadline = time.monotonic() + _STOP_GRACE
        for slot in self.slots:
            slot.restart_at = None
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGTERM)

    def _start(self, slot: _Slot) -> None:
        slot.restart_at = None
        slot.listening = False
        slot.pipe_r, slot.pipe_w = os.pipe()
        work = self.make_work(slot.sock, slot.index)
        link = self.hub.attach(slot.index)
        inherited = [fd for other in self.slots if other is not slot for fd in (other.pipe_r, other.pipe_w)]
        inherited += [slot.pipe_r, *self.wake_fds, *self.hub.own_fds()]
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # Blocked across the fork: the child must not run the supervisor's handlers.
        signals = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        pid = os.fork()
        if pid == 0:
            _child(slot, work, link, [fd for fd in inherited if fd >= 0], mask)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        link.close()
        os.close(slot.pipe_w)
        slot.pipe_w = -1
        slot.pid = pid
        slot.started = time.monotonic()
        logger.info("worker %d started (pid %d)", slot.index, pid)

    def _close_pipe(self, slot: _Slot) -> None:
        for fd in (slot.pipe_r, slot.pipe_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        slot.pipe_r = slot.pipe_w = -1

    def _wait(self, wake: socket.socket) -> None:
        """Until a signal, a worker that starts listening, or the next timer."""
        now = time.monotonic()
        timers = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        if self.stopping:
            timers.append(self.stop_deadline)
        elif (hub_timeout := self.hub.timeout(now)) is not None:
            timers.append(now + hub_timeout)
        timeout = max(0.0, min(timers) - now) if timers else None
        pipes = [slot.pipe_r for slot in self.slots if slot.pipe_r >= 0]
        links, sending = self.hub.fds()
        readable, writable, _ = select.select([wake.fileno(), *pipes, *links], sending, [], timeout)
        self.hub.ready(readable, writable, time.monotonic())
        with contextlib.suppress(BlockingIOError):
            while wake.recv(4096):
                pass
        for slot in self.slots:
            if slot.pipe_r in readable:
                got = os.read(slot.pipe_r, 1)
                if got:
                    slot.listening = slot.ever_listened = True
                self._close_pipe(slot)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot in self.slots:
                if slot.pid == pid:
                    self._exited(slot, status)

    def _exited(self, slot: _Slot, status: int) -> None:
        slot.pid = 0
        self._close_pipe(slot)
        self.hub.detach(slot.index)
        how = _describe(status)
        if self.stopping:
            logger.info("worker %d %s", slot.index, how)
            return
        if not slot.ever_listened:
            logger.error("worker %d %s before it listened: stopping", slot.index, how)
            self.failure = os.waitstatus_to_exitcode(status) or 1
            self._stop()
            return
        uptime = time.monotonic() - slot.started
        slot.failures = slot.failures + 1 if uptime < _STABLE_AFTER or not slot.listening else 0
        delay = 0.0 if slot.failures == 0 else min(_MAX_DELAY, 0.5 * 2 ** (slot.failures - 1))
        logger.warning("worker %d %s after %.1f s: restarting it%s", slot.index, how, uptime,
                       f" in {delay:.1f} s" if delay else "")
        slot.restart_at = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now and not slot.pid:
                self._start(slot)

    def _announce(self, ready: Callable[[int], Any] | None) -> None:
        if self.announced or not all(slot.listening for slot in self.slots):
            return
        self.announced = True
        port = self.slots[0].sock.getsockname()[1]
        logger.info("%d workers listening on port %d", len(self.slots), port)
        if ready is not None:
            result = ready(port)
            if inspect.isawaitable(result):  # pragma: no cover - misuse: no loop runs here
                raise TypeError("ready must be a plain function: the supervisor runs no event loop")

    def _kill_stragglers(self) -> None:
        for slot in self.slots:
            if slot.pid:
                logger.warning("worker %d (pid %d) still running %.0f s after SIGTERM: killing it",
                               slot.index, slot.pid, _STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
        self.stop_deadline = time.monotonic() + _STOP_GRACE


def _describe(status: int) -> str:
    """How a worker ended, from its wait status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"was killed by {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
