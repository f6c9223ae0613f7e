"""Incremental UTF-8 validation that fails as soon as a sequence cannot be valid.

CPython's incremental UTF-8 decoder rejects an impossible prefix (``F4 90``,
past U+10FFFF; ``E0 80``, overlong; ...) at the byte where it becomes
impossible, even inside a fragment: the fail-fast behaviour RFC 6455 section
8.1 asks for. It waits for the third byte of a surrogate (``ED A0``..``ED BF``),
so that one prefix is checked here by hand.
"""

from __future__ import annotations

import codecs

__all__ = ["Utf8Decoder", "InvalidUtf8"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


class InvalidUtf8(ValueError):
    """The bytes are not valid UTF-8."""


class Utf8Decoder:
    """Decodes a message fed in pieces; raises :class:`InvalidUtf8` as early as possible."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder("strict")

    def feed(self, data: bytes | bytearray | memoryview, final: bool = False) -> str:
        """Decode the next piece; ``final`` says no more bytes follow."""
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise InvalidUtf8(str(exc)) from None
        if not final:
            pending = self._decoder.getstate()[0]
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise InvalidUtf8("UTF-16 surrogate (ED A0..BF) in UTF-8")
        return text

    def reset(self) -> None:
        """Forget any partial sequence, ready for a new message."""
        self._decoder.reset()
