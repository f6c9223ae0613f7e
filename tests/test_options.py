"""wsevents.options and wsevents.unix, shared by the asyncio and threaded APIs: the old import
paths under wsevents.aio still give the same objects."""

from __future__ import annotations

import wsevents.aio.options
import wsevents.aio.unix
import wsevents.options
import wsevents.unix


def test_aio_options_re_exports_the_shared_module() -> None:
    for name in wsevents.aio.options.__all__:
        assert getattr(wsevents.aio.options, name) is getattr(wsevents.options, name), name
    assert sorted(wsevents.aio.options.__all__) == sorted(wsevents.options.__all__)


def test_aio_unix_re_exports_the_shared_module() -> None:
    for name in wsevents.aio.unix.__all__:
        assert getattr(wsevents.aio.unix, name) is getattr(wsevents.unix, name), name
    assert sorted(wsevents.aio.unix.__all__) == sorted(wsevents.unix.__all__)
