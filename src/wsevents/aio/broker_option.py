"""The ``broker`` option of a server or of ``wsevents serve``/``run``: no broker, a
:class:`~wsevents.aio.broker.Broker` object, or a Redis URL.

Apart from :mod:`wsevents.aio.broker` so that the Redis broker (which subclasses
:class:`~wsevents.aio.broker.Broker`, and needs the optional ``redis`` package) is imported
only here, and only for a Redis URL, with no import cycle between the two.
"""

from __future__ import annotations

from typing import Any

from .broker import Broker

__all__ = ["REDIS_SCHEMES", "make_broker"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def make_broker(broker: Any, cluster: str) -> Broker | None:
    """The broker of the ``broker`` option: None, a :class:`Broker`, or a Redis URL."""
    if broker is None:
        return None
    if isinstance(broker, Broker):
        if cluster != "wsevents" and broker.cluster and broker.cluster != cluster:
            raise ValueError(
                f"cluster={cluster!r} but the broker object is of cluster {broker.cluster!r}: "
                "give the cluster to the broker object only"
            )
        return broker
    if isinstance(broker, str):
        if not broker.startswith(REDIS_SCHEMES):
            raise ValueError(
                f"broker must be a redis://, rediss:// or unix:// URL or a Broker object, not {broker!r}"
            )
        from .redis_broker import RedisBroker

        return RedisBroker(broker, cluster=cluster)
    raise TypeError(f"broker must be a URL (str) or a Broker object, not {type(broker).__name__}")
