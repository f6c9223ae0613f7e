"""Close codes (RFC 6455 section 7.4) and which of them may travel on the wire."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["CloseCode", "is_valid_wire_code", "may_send", "check_close_order"]


class CloseCode(IntEnum):
    """The registered close codes."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never on the wire: "the close frame had no code"
    ABNORMAL = 1006  # never on the wire: "the connection dropped"
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire


# Codes in 1000-2999 that a close frame may carry (RFC 6455 7.4.1 and the IANA registry).
_REGISTERED_ON_WIRE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def is_valid_wire_code(code: int) -> bool:
    """Whether a received close frame may carry ``code`` (else the peer broke the RFC: 1002)."""
    return code in _REGISTERED_ON_WIRE or 3000 <= code <= 4999


def may_send(code: int) -> bool:
    """Whether this endpoint may send ``code`` in a close frame (same set as received)."""
    return is_valid_wire_code(code)


def check_close_order(code: object, reason: object) -> None:
    """Refuse ``close("bye")``: the reason given where the code goes, as it may be in other APIs.

    Raises:
        TypeError: ``code`` is a str; the message says the code comes first.
    """
    if isinstance(code, str):
        first = reason if isinstance(reason, int) and not isinstance(reason, bool) else CloseCode.NORMAL.value
        example = f"close({first}, {code!r})"
        raise TypeError(f"close(code, reason): the code comes first, e.g. {example}")
