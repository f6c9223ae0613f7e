"""The conformance cases, organised like the Autobahn|Testsuite sections.

Each :class:`Case` is what the raw peer sends (steps) and what the wsevents
side must do: echo exactly ``echo`` (messages, in order) and answer ``pongs``;
then either close with one of ``close`` (its first close frame carries that
code) or, when ``close`` is None, complete a normal closing handshake that the
peer starts with 1000. ``fail_fast`` cases also require the close frame to
arrive before the rest of the offending message is sent.

Sections 12 and 13 run with permessage-deflate agreed (``extensions``): the
peer sends RSV1 frames it compressed itself and inflates what comes back.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from peer import FrameSpec, Send, Sleep, Step, Wait

from helpers import BINARY, CLOSE, CONT, PING, PONG, TEXT

__all__ = ["Case", "CASES", "SECTIONS"]

MiB = 1 << 20
Msg = tuple[int, bytes]
#: The RSV1 bit in the frame builder's 3-bit ``rsv`` (RSV1 RSV2 RSV3).
RSV1 = 0b100


@dataclass(frozen=True)
class Case:
    """One conformance case."""

    id: str
    title: str
    steps: tuple[Step, ...]
    echo: tuple[Msg, ...] = ()
    pongs: tuple[bytes, ...] = ()
    close: tuple[int, ...] | None = None
    fail_fast: bool = False
    extensions: str | None = None
    options: dict[str, object] = field(default_factory=dict)

    @property
    def section(self) -> str:
        return self.id.split(".")[0]


SECTIONS = {
    "1": "framing",
    "2": "ping/pong",
    "3": "reserved bits",
    "4": "opcodes",
    "5": "fragmentation",
    "6": "UTF-8",
    "7": "close handshake",
    "9": "limits (scaled)",
    "10": "auto-fragmentation",
    "12": "compression (messages)",
    "13": "compression (parameters)",
}

CASES: list[Case] = []


def add(case: Case) -> None:
    assert all(c.id != case.id for c in CASES), case.id
    CASES.append(case)


def send(*frames: FrameSpec, chop: int | None = None, delay: float = 0.0, fail_fast: bool = False) -> Send:
    return Send(tuple(frames), chop=chop, delay=delay, fail_fast=fail_fast)


def f(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, **kw: int) -> FrameSpec:
    return FrameSpec(opcode, payload, fin, rsv, **kw)  # type: ignore[arg-type]


def close_body(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


# -- 1 framing ---------------------------------------------------------------------

for kind, opcode in (("text", TEXT), ("binary", BINARY)):
    sub = 1 if opcode == TEXT else 2
    for i, n in enumerate((0, 125, 126, 127, 128, 65535, 65536, MiB), start=1):
        payload = b"*" * n if opcode == TEXT else bytes(range(256)) * (n // 256) + bytes(n % 256)
        # None: the shortest form (7-bit up to 125, 16-bit up to 65535, else 64-bit); then the longer ones.
        forms = [None, 126, 127] if n <= 125 else [None, 127] if n <= 65535 else [None]
        for form in forms:
            suffix = "" if form is None else f"-len{form}"
            add(
                Case(
                    f"1.{sub}.{i}{suffix}",
                    f"{kind} message of {n} bytes" + (f" in a {form}-form length" if form else ""),
                    (send(f(opcode, payload, length_form=form) if form else f(opcode, payload)),),
                    echo=((opcode, payload),),
                )
            )
    for j, chop in ((9, 1), (10, 997)):
        n = 65536 if chop == 997 else 300
        payload = b"c" * n if opcode == TEXT else bytes(range(256)) * (n // 256) + bytes(n % 256)
        add(
            Case(
                f"1.{sub}.{j}",
                f"{kind} message of {n} bytes sent in chops of {chop}",
                (send(f(opcode, payload), chop=chop),),
                echo=((opcode, payload),),
            )
        )
    # Every length of 1.x.1-8 again, in every length form, written in chops: 1-byte chops for
    # the short ones (each header byte arrives alone), 997-byte chops for all.
    for i, n in enumerate((0, 125, 126, 127, 128, 65535, 65536, MiB), start=1):
        payload = b"*" * n if opcode == TEXT else bytes(range(256)) * (n // 256) + bytes(n % 256)
        forms = [None, 126, 127] if n <= 125 else [None, 127] if n <= 65535 else [None]
        for chop in (1, 997) if n <= 128 else (997,):
            for form in forms:
                suffix = "" if form is None else f"-len{form}"
                add(
                    Case(
                        f"1.{sub}.{i}{suffix}-chop{chop}",
                        f"{kind} message of {n} bytes"
                        + (f" in a {form}-form length" if form else "")
                        + f", in chops of {chop}",
                        (send(f(opcode, payload, length_form=form), chop=chop),),
                        echo=((opcode, payload),),
                    )
                )

# -- 2 ping/pong -----------------------------------------------------------------------

add(Case("2.1", "ping without payload", (send(f(PING)),), pongs=(b"",)))
add(
    Case(
        "2.2", "ping with a small text payload", (send(f(PING, b"Hello, world!")),), pongs=(b"Hello, world!",)
    )
)
add(
    Case(
        "2.3",
        "ping with a small binary payload",
        (send(f(PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")),),
        pongs=(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff",),
    )
)
add(Case("2.4", "ping with a 125-byte payload", (send(f(PING, b"\xfe" * 125)),), pongs=(b"\xfe" * 125,)))
add(Case("2.5", "ping with a 126-byte payload", (send(f(PING, b"\xfe" * 126)),), close=(1002,)))
add(
    Case(
        "2.6",
        "ping with a 125-byte payload in chops of 1",
        (send(f(PING, b"\xfe" * 125), chop=1),),
        pongs=(b"\xfe" * 125,),
    )
)
add(Case("2.7", "unsolicited pong without payload", (send(f(PONG)),)))
add(Case("2.8", "unsolicited pong with payload", (send(f(PONG, b"unsolicited pong payload")),)))
add(
    Case(
        "2.9",
        "unsolicited pong, then ping",
        (send(f(PONG, b"unsolicited"), f(PING, b"ping payload")),),
        pongs=(b"ping payload",),
    )
)
add(
    Case(
        "2.10",
        "10 pings in a row",
        (send(*(f(PING, b"payload-%d" % i) for i in range(10))),),
        pongs=tuple(b"payload-%d" % i for i in range(10)),
    )
)
add(
    Case(
        "2.11",
        "10 pings in a row, chopped",
        (send(*(f(PING, b"payload-%d" % i) for i in range(10)), chop=1),),
        pongs=tuple(b"payload-%d" % i for i in range(10)),
    )
)

# -- 3 reserved bits (no extension agreed) -----------------------------------------------

add(Case("3.1", "text with RSV1", (send(f(TEXT, b"Hello, world!", rsv=RSV1)),), close=(1002,)))
add(
    Case(
        "3.2",
        "valid text, text with RSV2, ping",
        (
            send(f(TEXT, b"Hello, world!")),
            Wait(messages=1),
            send(f(TEXT, b"Hello, world!", rsv=2), f(PING, b"x")),
        ),
        echo=((TEXT, b"Hello, world!"),),
        close=(1002,),
    )
)
add(
    Case(
        "3.3",
        "valid text, text with RSV1+RSV2, ping, with delays",
        (
            send(f(TEXT, b"Hello, world!")),
            Wait(messages=1),
            Sleep(0.05),
            send(f(TEXT, b"Hello, world!", rsv=3), f(PING, b"x")),
        ),
        echo=((TEXT, b"Hello, world!"),),
        close=(1002,),
    )
)
add(
    Case(
        "3.4",
        "valid text, text with RSV3, ping, chopped",
        (
            send(f(TEXT, b"Hello, world!"), chop=1),
            Wait(messages=1),
            send(f(TEXT, b"Hello, world!", rsv=1), f(PING, b"x"), chop=1),
        ),
        echo=((TEXT, b"Hello, world!"),),
        close=(1002,),
    )
)
add(Case("3.5", "binary with RSV1+RSV3", (send(f(BINARY, bytes(range(8)), rsv=5)),), close=(1002,)))
add(Case("3.6", "ping with RSV2+RSV3", (send(f(PING, b"x", rsv=6)),), close=(1002,)))
add(Case("3.7", "close with all RSV bits", (send(f(CLOSE, close_body(1000), rsv=7)),), close=(1002,)))

# Each reserved bit on each kind of frame: alone (3.8), and after a valid message that must be
# echoed first, followed by a ping that must not be answered (3.9).
_RSV_KINDS: dict[str, tuple[FrameSpec, ...]] = {
    "text": (f(TEXT, b"Hello, world!"),),
    "binary": (f(BINARY, b"\x00\xff\x01\xfe"),),
    "ping": (f(PING, b"ping"),),
    "close": (f(CLOSE, close_body(1000)),),
    "continuation": (f(TEXT, b"frag", fin=False), f(CONT, b"ment")),
}
for bit, bit_name in ((0b100, "RSV1"), (0b010, "RSV2"), (0b001, "RSV3")):
    for kind_name, frames in _RSV_KINDS.items():
        bad = (*frames[:-1], f(frames[-1].opcode, frames[-1].payload, fin=frames[-1].fin, rsv=bit))
        add(Case(f"3.8.{bit_name}-{kind_name}", f"{kind_name} with {bit_name}", (send(*bad),), close=(1002,)))
        add(
            Case(
                f"3.9.{bit_name}-{kind_name}",
                f"valid text echoed, then {kind_name} with {bit_name}, then a ping",
                (send(f(TEXT, b"valid")), Wait(messages=1), send(*bad), send(f(PING, b"unanswered"))),
                echo=((TEXT, b"valid"),),
                close=(1002,),
            )
        )

# -- 4 opcodes ---------------------------------------------------------------------------

for i, op in enumerate((3, 4, 5, 6, 7), start=1):
    add(
        Case(
            f"4.1.{i}",
            f"reserved data opcode {op}",
            (
                send(f(TEXT, b"Hello")),
                Wait(messages=1),
                send(f(op, b"reserved" if i % 2 else b"")),
                send(f(PING, b"x")),
            ),
            echo=((TEXT, b"Hello"),),
            close=(1002,),
        )
    )
for i, op in enumerate((0xB, 0xC, 0xD, 0xE, 0xF), start=1):
    add(
        Case(
            f"4.2.{i}",
            f"reserved control opcode {op:#x}",
            (
                send(f(TEXT, b"Hello")),
                Wait(messages=1),
                send(f(op, b"reserved" if i % 2 else b"")),
                send(f(PING, b"x")),
            ),
            echo=((TEXT, b"Hello"),),
            close=(1002,),
        )
    )
# 4.3: every reserved opcode both with and without a payload, alone and after a valid echo.
for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
    for payload in (b"", b"reserved"):
        what = f"reserved opcode {op:#x} " + ("with a payload" if payload else "without payload")
        tag = f"{op:x}-{'payload' if payload else 'empty'}"
        add(Case(f"4.3.{tag}", what, (send(f(op, payload)),), close=(1002,)))
        add(
            Case(
                f"4.4.{tag}",
                f"valid text echoed, then {what}, then a ping",
                (send(f(TEXT, b"Hello")), Wait(messages=1), send(f(op, payload), f(PING, b"x"))),
                echo=((TEXT, b"Hello"),),
                close=(1002,),
            )
        )

# -- 5 fragmentation ---------------------------------------------------------------------

add(Case("5.1", "ping in 2 fragments", (send(f(PING, b"frag", fin=False), f(CONT, b"ment")),), close=(1002,)))
add(Case("5.2", "pong in 2 fragments", (send(f(PONG, b"frag", fin=False), f(CONT, b"ment")),), close=(1002,)))
for j, (chop, delay) in enumerate(((None, 0.0), (1, 0.0), (None, 0.05)), start=3):
    add(
        Case(
            f"5.{j}",
            "text in 2 fragments" + (" chopped" if chop else " with a delay" if delay else ""),
            (send(f(TEXT, b"fragment1", fin=False), f(CONT, b"fragment2"), chop=chop, delay=delay),),
            echo=((TEXT, b"fragment1fragment2"),),
        )
    )
for j, chop in ((6, None), (7, 1), (8, None)):
    steps: tuple[Step, ...] = (
        send(f(TEXT, b"fragment1", fin=False), f(PING, b"ping"), f(CONT, b"fragment2"), chop=chop),
    )
    if j == 8:
        steps = (
            send(f(TEXT, b"fragment1", fin=False)),
            Sleep(0.05),
            send(f(PING, b"ping")),
            Sleep(0.05),
            send(f(CONT, b"fragment2")),
        )
    add(
        Case(
            f"5.{j}",
            "text in 2 fragments with a ping between",
            steps,
            echo=((TEXT, b"fragment1fragment2"),),
            pongs=(b"ping",),
        )
    )
add(
    Case(
        "5.9",
        "continuation (fin) without a message, then text",
        (send(f(CONT, b"non-continuation"), f(TEXT, b"Hello")),),
        close=(1002,),
    )
)
add(
    Case(
        "5.10",
        "same as 5.9, chopped",
        (send(f(CONT, b"non-continuation"), f(TEXT, b"Hello"), chop=1),),
        close=(1002,),
    )
)
add(
    Case(
        "5.11",
        "continuation (not fin) without a message",
        (send(f(CONT, b"x", fin=False), f(CONT, b"y")),),
        close=(1002,),
    )
)
add(
    Case(
        "5.12",
        "message starting with a continuation, 3 fragments",
        (send(f(CONT, b"a", fin=False), f(CONT, b"b", fin=False), f(CONT, b"c")),),
        close=(1002,),
    )
)
add(
    Case(
        "5.13",
        "text fragment, then a new text frame inside it",
        (send(f(TEXT, b"fragment1", fin=False), f(TEXT, b"fragment2")),),
        close=(1002,),
    )
)
add(
    Case(
        "5.14",
        "whole message, then a binary frame inside a fragmented text",
        (send(f(TEXT, b"ok")), Wait(messages=1), send(f(TEXT, b"a", fin=False), f(BINARY, b"b"))),
        echo=((TEXT, b"ok"),),
        close=(1002,),
    )
)
add(
    Case(
        "5.15",
        "fragmented ping inside a fragmented text",
        (send(f(TEXT, b"a", fin=False), f(PING, b"p", fin=False), f(CONT, b"q"), f(CONT, b"b")),),
        close=(1002,),
    )
)
add(
    Case(
        "5.16",
        "close frame fragmented",
        (send(f(CLOSE, close_body(1000), fin=False), f(CONT, b"")),),
        close=(1002,),
    )
)
add(
    Case(
        "5.17",
        "empty fragments",
        (send(f(TEXT, b"", fin=False), f(CONT, b"", fin=False), f(CONT, b"")),),
        echo=((TEXT, b""),),
    )
)
add(
    Case(
        "5.18",
        "many 1-byte fragments",
        (send(f(TEXT, b"a", fin=False), *(f(CONT, b"b", fin=False) for _ in range(98)), f(CONT, b"c")),),
        echo=((TEXT, b"a" + b"b" * 98 + b"c"),),
    )
)
add(
    Case(
        "5.19",
        "5 fragments with pings between and delays",
        tuple(
            x
            for i in range(5)
            for x in (
                send(f(TEXT if i == 0 else CONT, b"fragment%d" % i, fin=i == 4)),
                send(f(PING, b"pongme %d!" % i)),
                Sleep(0.02),
            )
        ),
        echo=((TEXT, b"".join(b"fragment%d" % i for i in range(5))),),
        pongs=tuple(b"pongme %d!" % i for i in range(5)),
    )
)
add(
    Case(
        "5.20",
        "binary in 2 fragments, then text",
        (send(f(BINARY, b"\x00\x01", fin=False), f(CONT, b"\x02"), f(TEXT, b"t")),),
        echo=((BINARY, b"\x00\x01\x02"), (TEXT, b"t")),
    )
)

_BLOB300 = bytes(range(256)) + bytes(range(44))
add(
    Case(
        "5.21",
        "binary in 30 fragments",
        (
            send(
                f(BINARY, _BLOB300[:10], fin=False),
                *(f(CONT, _BLOB300[k : k + 10], fin=False) for k in range(10, 290, 10)),
                f(CONT, _BLOB300[290:]),
            ),
        ),
        echo=((BINARY, _BLOB300),),
    )
)
add(
    Case(
        "5.22",
        "binary in 1-byte fragments",
        (
            send(
                f(BINARY, _BLOB300[:1], fin=False),
                *(f(CONT, _BLOB300[k : k + 1], fin=False) for k in range(1, 299)),
                f(CONT, _BLOB300[299:]),
            ),
        ),
        echo=((BINARY, _BLOB300),),
    )
)
add(
    Case(
        "5.23",
        "text in 2 fragments with a ping between, the ping alone written in 1-byte chops",
        (
            send(f(TEXT, b"fragment1", fin=False)),
            send(f(PING, b"chopped ping"), chop=1),
            send(f(CONT, b"fragment2")),
        ),
        echo=((TEXT, b"fragment1fragment2"),),
        pongs=(b"chopped ping",),
    )
)
add(
    Case(
        "5.24",
        "binary in 3 fragments with a ping and an unsolicited pong between",
        (
            send(
                f(BINARY, b"\x00\x01", fin=False),
                f(PING, b"p"),
                f(CONT, b"\x02", fin=False),
                f(PONG, b"unsolicited"),
                f(CONT, b"\x03"),
            ),
        ),
        echo=((BINARY, b"\x00\x01\x02\x03"),),
        pongs=(b"p",),
    )
)
add(
    Case(
        "5.25",
        "text with empty fragments between non-empty ones",
        (
            send(
                f(TEXT, b"abc", fin=False), f(CONT, b"", fin=False), f(CONT, b"def", fin=False), f(CONT, b"")
            ),
        ),
        echo=((TEXT, b"abcdef"),),
    )
)
add(
    Case(
        "5.26",
        "empty binary fragments",
        (send(f(BINARY, b"", fin=False), f(CONT, b"", fin=False), f(CONT, b"")),),
        echo=((BINARY, b""),),
    )
)

# -- 6 UTF-8 -------------------------------------------------------------------------------

VALID = [
    ("6.2.1", "Hello-µ@ßöäüàá-UTF-8!!".encode()),
    ("6.2.2", "κόσμε".encode()),
    ("6.2.3", "\u0080\u07ff\u0800\uffff".encode()),
    ("6.2.4", "\U00010000\U0010ffff".encode()),
    ("6.2.5", "\ud7ff\ue000\ufffd".encode()),
    ("6.2.6", b"\x00\x7f"),  # first and last 1-byte code points
    ("6.2.7", b"\xef\xbf\xbe\xef\xbb\xbf"),  # U+FFFE (noncharacter), U+FEFF (BOM): valid
    ("6.2.8", b"\xf0\x9f\xbf\xbe\xf4\x8f\xbf\xbe"),  # U+1FFFE, U+10FFFE
    ("6.2.9", b"\xef\xbf\xbf"),  # U+FFFF alone
    ("6.2.10", b"\xf4\x8f\xbf\xbf"),  # U+10FFFF alone
]
for cid, text in VALID:
    add(Case(cid, f"valid UTF-8 {text!r} in one frame", (send(f(TEXT, text)),), echo=((TEXT, text),)))
    add(
        Case(
            cid + "-split",
            f"valid UTF-8 {text!r} split at every byte over 2 fragments",
            tuple(send(f(TEXT, text[:k], fin=False), f(CONT, text[k:])) for k in range(len(text) + 1)),
            echo=tuple((TEXT, text) for _ in range(len(text) + 1)),
        )
    )
    add(
        Case(
            cid + "-chop",
            f"valid UTF-8 {text!r} in 1-byte fragments",
            (
                send(
                    f(TEXT, text[:1], fin=False),
                    *(f(CONT, text[k : k + 1], fin=False) for k in range(1, len(text) - 1)),
                    f(CONT, text[-1:]),
                ),
            ),
            echo=((TEXT, text),),
        )
    )

INVALID = [
    ("6.3.1", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"),  # surrogate
    ("6.3.2", b"\xf4\x90\x80\x80"),  # past U+10FFFF
    ("6.3.3", b"\xc0\xaf"),  # overlong "/"
    ("6.3.4", b"\xe0\x80\xaf"),  # overlong
    ("6.3.5", b"\xf0\x80\x80\xaf"),  # overlong
    ("6.3.6", b"\xf8\x88\x80\x80\xaf"),  # 5-byte form
    ("6.3.7", b"\xfc\x84\x80\x80\x80\xaf"),  # 6-byte form
    ("6.3.8", b"\x80"),  # lone continuation
    ("6.3.9", b"\xbf\xbf"),
    ("6.3.10", b"\xed\xbf\xbf"),  # last surrogate
    ("6.3.11", b"\xfe"),
    ("6.3.12", b"\xff\xfe"),
    ("6.3.13", b"abc\xe2\x82"),  # truncated at the end
    ("6.3.14", b"\xc2 "),  # truncated, then ASCII
    ("6.3.15", b"\xef\xbf"),  # truncated U+FFFF
    # UTF-16 surrogates, single (ED A0 80 .. ED BF BF) and paired
    ("6.3.16", b"\xed\xa0\x80"),
    ("6.3.17", b"\xed\xad\xbf"),
    ("6.3.18", b"\xed\xae\x80"),
    ("6.3.19", b"\xed\xaf\xbf"),
    ("6.3.20", b"\xed\xb0\x80"),
    ("6.3.21", b"\xed\xbe\x80"),
    ("6.3.22", b"\xed\xa0\x80\xed\xb0\x80"),
    ("6.3.23", b"\xed\xaf\xbf\xed\xbf\xbf"),
    # more overlong forms: the largest overlong of each length, overlong NUL
    ("6.3.24", b"\xc1\xbf"),
    ("6.3.25", b"\xe0\x9f\xbf"),
    ("6.3.26", b"\xf0\x8f\xbf\xbf"),
    ("6.3.27", b"\xc0\x80"),
    ("6.3.28", b"\xe0\x80\x80"),
    ("6.3.29", b"\xf0\x80\x80\x80"),
    # past U+10FFFF, 5- and 6-byte forms
    ("6.3.30", b"\xf4\x90\x80\x80"),  # as 6.3.2, after valid text below
    ("6.3.31", b"\xf7\xbf\xbf\xbf"),
    ("6.3.32", b"\xfb\xbf\xbf\xbf\xbf"),
    ("6.3.33", b"\xfd\xbf\xbf\xbf\xbf\xbf"),
    # lone continuation bytes, lonely start bytes, truncated sequences
    ("6.3.34", bytes(range(0x80, 0xC0))),
    ("6.3.35", b"\xc0 \xc1 \xdf "),
    ("6.3.36", b"\xe0 \xef "),
    ("6.3.37", b"\xf0 \xf4 "),
    ("6.3.38", b"\xf0\x9f\x98"),  # truncated 4-byte sequence at the end
    ("6.3.39", b"\xc2\xe0\xa0\xf0\x90\x80"),  # a row of truncated sequences
    # impossible bytes
    ("6.3.40", b"\xff"),
    ("6.3.41", b"\xfe\xfe\xff\xff"),
]
INVALID = [(cid, b"valid " + bad) if cid == "6.3.30" else (cid, bad) for cid, bad in INVALID]
for cid, bad in INVALID:
    add(Case(cid, f"invalid UTF-8 {bad!r} in one frame", (send(f(TEXT, bad)),), close=(1007,)))
    add(
        Case(
            cid + "-frag",
            f"invalid UTF-8 {bad!r} over 2 fragments",
            (send(f(TEXT, bad[:1], fin=False), f(CONT, bad[1:])),),
            close=(1007,),
        )
    )
    if len(bad) > 1:
        add(
            Case(
                cid + "-bytes",
                f"invalid UTF-8 {bad!r} in 1-byte fragments",
                (
                    send(
                        f(TEXT, bad[:1], fin=False),
                        *(f(CONT, bad[k : k + 1], fin=False) for k in range(1, len(bad) - 1)),
                        f(CONT, bad[-1:]),
                    ),
                ),
                close=(1007,),
            )
        )

KOSME_BAD = "κόσμε".encode() + b"\xed\xa0\x80edited"
for k in range(len(KOSME_BAD) + 1):
    add(
        Case(
            f"6.4.split-{k}",
            f"κόσμε + surrogate, split into 2 fragments at byte {k}",
            (send(f(TEXT, KOSME_BAD[:k], fin=False), f(CONT, KOSME_BAD[k:])),),
            close=(1007,),
        )
    )

# Fail fast (Autobahn 6.4.x): the close arrives before the final fragment is sent.
FF1 = "κόσμε".encode()
add(
    Case(
        "6.4.1",
        "fail fast: invalid 2nd fragment, final fragment only after the close",
        (
            send(f(TEXT, FF1, fin=False)),
            Sleep(0.05),
            send(f(CONT, b"\xf4\x90\x80\x80", fin=False), fail_fast=False),
            send(f(CONT, b"edited"), fail_fast=True),
        ),
        close=(1007,),
        fail_fast=True,
    )
)
add(
    Case(
        "6.4.2",
        "fail fast: invalid byte completes a sequence started in fragment 1",
        (
            send(f(TEXT, FF1 + b"\xf4", fin=False)),
            Sleep(0.05),
            send(f(CONT, b"\x90\x80\x80", fin=False)),
            send(f(CONT, b"edited"), fail_fast=True),
        ),
        close=(1007,),
        fail_fast=True,
    )
)
add(
    Case(
        "6.4.3",
        "fail fast inside one frame sent in 3 chops",
        (
            Send(
                (f(TEXT, FF1 + b"\xf4\x90\x80\x80" + b"edited"),),
                cuts_from_end=(6 + 4, 6),
                fail_fast=True,
                delay=0.05,
            ),
        ),
        close=(1007,),
        fail_fast=True,
    )
)
add(
    Case(
        "6.4.4",
        "fail fast: surrogate prefix ED A0 in a non-final fragment",
        (send(f(TEXT, FF1 + b"\xed\xa0", fin=False)), send(f(CONT, b"\x80edited"), fail_fast=True)),
        close=(1007,),
        fail_fast=True,
    )
)

# -- 7 close handshake ---------------------------------------------------------------------

add(Case("7.1.1", "text, then a normal close", (send(f(TEXT, b"Hello")),), echo=((TEXT, b"Hello"),)))
add(
    Case(
        "7.1.2",
        "close, then close again",
        (send(f(CLOSE, close_body(1000)), f(CLOSE, close_body(1000))),),
        close=(1000,),
    )
)
add(
    Case(
        "7.1.3",
        "close, then ping (ignored)",
        (send(f(CLOSE, close_body(1000)), f(PING, b"x")),),
        close=(1000,),
    )
)
add(
    Case(
        "7.1.4",
        "close, then text (ignored)",
        (send(f(CLOSE, close_body(1000)), f(TEXT, b"late")),),
        close=(1000,),
    )
)
add(
    Case(
        "7.1.5",
        "close in the middle of a fragmented text",
        (send(f(TEXT, b"frag", fin=False), f(CLOSE, close_body(1000)), f(CONT, b"ment")),),
        close=(1000,),
    )
)
add(Case("7.3.1", "close with an empty body: an empty close back", (send(f(CLOSE)),), close=(1005,)))
add(Case("7.3.2", "close with a 1-byte body", (send(f(CLOSE, b"\x03")),), close=(1002,)))
add(Case("7.3.3", "close with code 1000 and no reason", (send(f(CLOSE, close_body(1000))),), close=(1000,)))
add(Case("7.3.4", "close with a reason", (send(f(CLOSE, close_body(1000, b"Hello World!"))),), close=(1000,)))
add(
    Case(
        "7.3.5",
        "close with a 123-byte reason",
        (send(f(CLOSE, close_body(1000, b"*" * 123))),),
        close=(1000,),
    )
)
add(
    Case(
        "7.3.6",
        "close with a 124-byte reason (control frame of 126)",
        (send(f(CLOSE, close_body(1000, b"*" * 124))),),
        close=(1002,),
    )
)
add(
    Case(
        "7.5.1",
        "close reason that is not UTF-8",
        (
            send(
                f(CLOSE, close_body(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"))
            ),
        ),
        close=(1007,),
    )
)
for i, code in enumerate(
    (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999), 1
):
    add(Case(f"7.7.{i}", f"close with valid code {code}", (send(f(CLOSE, close_body(code))),), close=(code,)))
for i, code in enumerate((0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535), 1):
    add(
        Case(
            f"7.9.{i}", f"close with invalid code {code}", (send(f(CLOSE, close_body(code))),), close=(1002,)
        )
    )

# -- 9 limits (scaled so that CI stays short) ------------------------------------------------

for i, n in enumerate((64 << 10, 256 << 10, MiB, 4 * MiB), 1):
    add(
        Case(
            f"9.1.{i}", f"text message of {n >> 10} KiB", (send(f(TEXT, b"*" * n)),), echo=((TEXT, b"*" * n),)
        )
    )
    blob = bytes(range(256)) * (n // 256)
    add(
        Case(f"9.2.{i}", f"binary message of {n >> 10} KiB", (send(f(BINARY, blob)),), echo=((BINARY, blob),))
    )
for i, size in enumerate((256, 4 << 10, 64 << 10), 1):
    text = b"x" * MiB
    frames = [
        f(TEXT if k == 0 else CONT, text[k : k + size], fin=k + size >= MiB) for k in range(0, MiB, size)
    ]
    add(Case(f"9.3.{i}", f"1 MiB text in frames of {size} bytes", (send(*frames),), echo=((TEXT, text),)))
    blob = bytes(range(256)) * (MiB // 256)
    frames = [
        f(BINARY if k == 0 else CONT, blob[k : k + size], fin=k + size >= MiB) for k in range(0, MiB, size)
    ]
    add(Case(f"9.4.{i}", f"1 MiB binary in frames of {size} bytes", (send(*frames),), echo=((BINARY, blob),)))
add(
    Case(
        "9.7.1",
        "1,000 small text messages back to back",
        (send(*(f(TEXT, b"m%04d" % i) for i in range(1000))),),
        echo=tuple((TEXT, b"m%04d" % i) for i in range(1000)),
    )
)
add(
    Case(
        "9.8.1",
        "1,000 small binary messages back to back",
        (send(*(f(BINARY, b"%04d" % i) for i in range(1000))),),
        echo=tuple((BINARY, b"%04d" % i) for i in range(1000)),
    )
)
add(
    Case(
        "9.9.1",
        "text over the limit (limit 64 KiB)",
        (send(f(TEXT, b"*" * ((64 << 10) + 1))),),
        close=(1009,),
        options={"max_buffer_length": 64 << 10},
    )
)
add(
    Case(
        "9.9.2",
        "header announcing 100 MiB (limit 64 KiB), payload never sent",
        (send(f(BINARY, b"", length=100 * MiB)),),
        close=(1009,),
        options={"max_buffer_length": 64 << 10},
    )
)

# -- 10 auto-fragmentation -----------------------------------------------------------------------

BLOB = bytes(range(256)) * (MiB // 256)
add(
    Case(
        "10.1.1",
        "1 MiB binary in 64 fragments",
        (
            send(
                *(
                    f(BINARY if k == 0 else CONT, BLOB[k : k + (MiB // 64)], fin=k + MiB // 64 >= MiB)
                    for k in range(0, MiB, MiB // 64)
                )
            ),
        ),
        echo=((BINARY, BLOB),),
    )
)

# -- 12/13 compression ----------------------------------------------------------------------------


def deflate(data: bytes, bits: int = 9) -> bytes:
    """Compress one message as a sender without context takeover (always allowed)."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def compressed_messages(n_messages: int, size: int, opcode: int) -> tuple[tuple[Step, ...], tuple[Msg, ...]]:
    msgs = []
    for i in range(n_messages):
        body = (b"compress me %d " % i) * (size // 14 + 1)
        msgs.append(body[:size] if opcode == BINARY else body[:size])
    steps = (send(*(f(opcode, deflate(m), rsv=RSV1) for m in msgs)),)
    return steps, tuple((opcode, m) for m in msgs)


OFFERS = {
    "default": "permessage-deflate",
    "cmwb": "permessage-deflate; client_max_window_bits",
    "cnct": "permessage-deflate; client_no_context_takeover",
    "snct": "permessage-deflate; server_no_context_takeover",
    "smwb9": "permessage-deflate; server_max_window_bits=9",
    "cmwb9": "permessage-deflate; client_max_window_bits=9",
    "all": "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
    "server_max_window_bits=10; client_max_window_bits=10",
}

for i, (opcode, size) in enumerate(
    (
        (TEXT, 16),
        (TEXT, 64),
        (TEXT, 256),
        (TEXT, 1024),
        (TEXT, 4096),
        (TEXT, 65536),
        (BINARY, 16),
        (BINARY, 1024),
        (BINARY, 65536),
        (BINARY, 262144),
    ),
    1,
):
    steps, echo = compressed_messages(20 if size < 65536 else 3, size, opcode)
    add(
        Case(
            f"12.1.{i}",
            f"{len(echo)} compressed {'text' if opcode == TEXT else 'binary'} messages of {size} bytes",
            steps,
            echo=echo,
            extensions=OFFERS["cmwb"],
        )
    )
uncompressed_mix = (
    send(
        f(TEXT, b"plain text"), f(TEXT, deflate(b"compressed text" * 20), rsv=RSV1), f(BINARY, b"\x00plain")
    ),
)
add(
    Case(
        "12.2.1",
        "compressed and uncompressed messages mixed",
        uncompressed_mix,
        echo=((TEXT, b"plain text"), (TEXT, b"compressed text" * 20), (BINARY, b"\x00plain")),
        extensions=OFFERS["cmwb"],
    )
)
FRAGMENTED = deflate(b"fragmented and compressed " * 400)
add(
    Case(
        "12.2.2",
        "a compressed message in 4 fragments (RSV1 on the first only)",
        (
            send(
                f(TEXT, FRAGMENTED[:100], fin=False, rsv=RSV1),
                f(CONT, FRAGMENTED[100:200], fin=False),
                f(CONT, FRAGMENTED[200:300], fin=False),
                f(CONT, FRAGMENTED[300:]),
            ),
        ),
        echo=((TEXT, b"fragmented and compressed " * 400),),
        extensions=OFFERS["cmwb"],
    )
)
add(
    Case(
        "12.3.1",
        "RSV1 on a continuation frame",
        (send(f(TEXT, deflate(b"abc"), fin=False, rsv=RSV1), f(CONT, b"x", rsv=RSV1)),),
        close=(1002,),
        extensions=OFFERS["cmwb"],
    )
)
add(
    Case(
        "12.3.2", "RSV1 on a ping", (send(f(PING, b"x", rsv=RSV1)),), close=(1002,), extensions=OFFERS["cmwb"]
    )
)
add(
    Case(
        "12.3.3",
        "compressed data that does not inflate",
        (send(f(TEXT, b"\xff\xff\xff\xff", rsv=RSV1)),),
        close=(1007,),
        extensions=OFFERS["cmwb"],
    )
)
add(
    Case(
        "12.3.4",
        "compressed text that inflates to invalid UTF-8",
        (send(f(TEXT, deflate(b"ok \xed\xa0\x80"), rsv=RSV1)),),
        close=(1007,),
        extensions=OFFERS["cmwb"],
    )
)
add(
    Case(
        "12.3.5",
        "a 64 KiB-limit server given 1 MiB of zeros compressed to ~1 KiB",
        (send(f(BINARY, deflate(bytes(MiB)), rsv=RSV1)),),
        close=(1009,),
        extensions=OFFERS["cmwb"],
        options={"max_buffer_length": 64 << 10},
    )
)

for j, (name, offer) in enumerate(OFFERS.items(), 1):
    for k, size in enumerate((64, 4096, 131072), 1):
        steps, echo = compressed_messages(10, size, TEXT if k != 2 else BINARY)
        add(
            Case(
                f"13.{j}.{k}",
                f"offer '{name}': 10 messages of {size} bytes",
                steps,
                echo=echo,
                extensions=offer,
            )
        )

CLOSE_CODES = {c.id: c.close for c in CASES}
