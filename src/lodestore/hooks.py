"""Test hooks: places where a test can stop or slow a real process (all in one module).

``LODESTORE_TEST_PAUSE_AT=<phase>`` makes the process print ``PAUSED <phase>`` to
stderr and sleep at that phase, so a test can SIGKILL it there.
``LODESTORE_TEST_DELAY_AT=<phase>:<seconds>`` makes it print ``DELAYED <phase>`` and
sleep that long, then carry on, so a test can act in a window otherwise microseconds
wide. Unset (every real use), each hook is one environment lookup.
"""

from __future__ import annotations

import os
import sys
import time


def pause_point(phase: str) -> None:
    """Sleep forever-ish at `phase` if LODESTORE_TEST_PAUSE_AT names it."""
    if os.environ.get("LODESTORE_TEST_PAUSE_AT") == phase:
        sys.stderr.write(f"PAUSED {phase}\n")
        sys.stderr.flush()
        time.sleep(600)


def delay_point(phase: str) -> None:
    """Sleep a moment at `phase` if LODESTORE_TEST_DELAY_AT is "<phase>:<seconds>"."""
    spec = os.environ.get("LODESTORE_TEST_DELAY_AT", "")
    name, _, seconds = spec.partition(":")
    if name == phase:
        sys.stderr.write(f"DELAYED {phase}\n")
        sys.stderr.flush()
        time.sleep(float(seconds or 1))
