"""Test hooks: hold a real process at a named point so a test can act in that window.

With ``LODESTORE_TEST_PAUSE_AT=<phase>`` the code reaching `pause_point(phase)` prints
``PAUSED <phase>`` to stderr, then waits: while the file named by
``LODESTORE_TEST_PAUSE_FILE`` exists if that is set (the test deletes it to let the
process go on), else until killed. Either way at most 10 minutes. Used by the SDK
(logging's commit window) and the store (gc's phases); imports only `lodestore.settings`,
a leaf, so both may import it.
"""

from __future__ import annotations

import os
import sys
import time

from lodestore import settings

MAX_PAUSE_SECONDS = 600.0


def pause_point(phase: str) -> None:
    if settings.test_pause_at() != phase:
        return
    sys.stderr.write(f"PAUSED {phase}\n")
    sys.stderr.flush()
    hold = settings.test_pause_file()
    deadline = time.monotonic() + MAX_PAUSE_SECONDS
    while time.monotonic() < deadline and (not hold or os.path.exists(hold)):
        time.sleep(0.02)


def delay_point(phase: str) -> None:
    """Sleep a moment at `phase` if LODESTORE_TEST_DELAY_AT is "<phase>:<seconds>"
    (announced as ``DELAYED <phase>`` on stderr), so a test can act in a window that is
    otherwise microseconds wide, and the process then carries on."""
    name, _, seconds = settings.test_delay_at().partition(":")
    if name == phase:
        sys.stderr.write(f"DELAYED {phase}\n")
        sys.stderr.flush()
        time.sleep(float(seconds or 1))
