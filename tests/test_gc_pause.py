"""gc_paused: one switch for the process, so overlapping pauses (a log on one thread, a
pull on another) turn the collector back on only when the last ends, and only if it was
on when the first began."""

from __future__ import annotations

import gc
import threading

from lodestore.gc_pause import gc_paused


def test_overlapping_pauses_on_two_threads_turn_the_collector_on_when_the_last_ends():
    assert gc.isenabled()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        first_in.wait()
        with gc_paused():
            second_in.set()
            first_out.wait()
            seen.append(gc.isenabled())  # the first pause ended: still off for this one
        seen.append(gc.isenabled())

    other = threading.Thread(target=second)
    other.start()
    with gc_paused():
        first_in.set()
        second_in.wait()
    first_out.set()
    other.join()
    assert seen == [False, True] and gc.isenabled()


def test_a_collector_turned_off_by_the_caller_stays_off():
    gc.disable()
    try:
        with gc_paused():
            with gc_paused():
                assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
