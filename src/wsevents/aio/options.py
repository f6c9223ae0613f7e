"""The options moved to :mod:`wsevents.options`, shared with the threaded API; re-exported here."""

from __future__ import annotations

from ..options import DEFAULTS, ClientOptions, Defaults, ServerOptions, merge_options

__all__ = ["DEFAULTS", "Defaults", "ServerOptions", "ClientOptions", "merge_options"]
