"""The Unix socket helpers moved to :mod:`wsevents.unix`, shared with the threaded API; re-exported here."""

from __future__ import annotations

from ..unix import UnixFile, bind_unix, unix_error, unix_url

__all__ = ["UnixFile", "bind_unix", "unix_error", "unix_url"]
