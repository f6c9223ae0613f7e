"""Frame-level backpressure in the core: pause() holds frames back, resume() hands them on in order."""

from __future__ import annotations

from helpers import frame, make_core

TEXT = 1


def test_pause_holds_frames_until_resume() -> None:
    core, recorder, _ = make_core()
    data = b"".join(frame(TEXT, f"m{i}".encode()) for i in range(5))
    core.receive_data(data[:10])  # one whole (masked, 8-byte) frame and a bit
    core.pause()
    core.receive_data(data[10:])
    assert recorder.calls == [("text", "m0")]
    core.resume()
    assert recorder.calls == [("text", f"m{i}") for i in range(5)]
    assert core.buffered == 0


def test_a_handler_pausing_stops_the_rest_of_the_same_read() -> None:
    core, recorder, _ = make_core()
    original = recorder.on_text

    def on_text(text: str) -> None:
        original(text)
        if text == "m1":
            core.pause()

    recorder.on_text = on_text  # type: ignore[method-assign]
    core.receive_data(b"".join(frame(TEXT, f"m{i}".encode()) for i in range(4)))
    assert recorder.calls == [("text", "m0"), ("text", "m1")]
    core.resume()
    assert [c[1] for c in recorder.calls] == ["m0", "m1", "m2", "m3"]


def test_resume_from_inside_a_handler_goes_on_in_the_same_parse() -> None:
    core, recorder, _ = make_core()
    original = recorder.on_text

    def on_text(text: str) -> None:
        original(text)
        core.pause()
        core.resume()  # no nested parse: the loop in progress simply continues

    recorder.on_text = on_text  # type: ignore[method-assign]
    core.receive_data(b"".join(frame(TEXT, f"m{i}".encode()) for i in range(3)))
    assert [c[1] for c in recorder.calls] == ["m0", "m1", "m2"]


def test_pause_within_a_payload_keeps_the_rest() -> None:
    core, recorder, _ = make_core(bound_binary=False)
    payload = bytes(range(256)) * 8
    data = frame(2, payload) + frame(TEXT, b"after")
    core.receive_data(data[:100])
    core.pause()
    core.receive_data(data[100:])
    assert b"".join(c[1] for c in recorder.calls if c[0] == "binary") == payload[: 100 - 8]
    core.resume()
    assert recorder.merged()[-1] == ("text", "after")
    assert b"".join(c[1] for c in recorder.calls if c[0] == "binary") == payload
