"""Whether a process of this host is still alive: the one rule that the store (a writer's
stale session folder, store/workdirs.py), the SDK (a run whose process died,
sdk/liveness.py) and the test servers' sweep use."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True if process `pid` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
