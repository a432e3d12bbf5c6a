"""How a run's end is recorded when nobody calls ``run.finish()``.

However the process ends, the run's final state is recorded:

- ``run.finish(exit_code=)`` or leaving ``with init() as run:``: finished (0) or failed;
  a ``SystemExit`` there counts with its own code (``sys.exit(0)`` is a success).
- an uncaught exception: failed, exit code 1 (130 for KeyboardInterrupt), before the
  traceback prints (`sys.excepthook`).
- ``sys.exit(3)`` with no finish(): failed, exit code 3. At interpreter exit an atexit
  hook finishes what is left, with the code recorded by a thin wrapper around
  `sys.exit` (W&B does the same). A bare ``raise SystemExit(3)`` at top level is not
  seen by any hook Python offers and is recorded as exit code 0.
- SIGTERM (``kill``, SLURM, ``docker stop``): failed, exit code 143, then the default
  action (the process dies by the signal). If the signal lands inside a catalog write
  that finishing would wait for, SystemExit(143) unwinds the main thread instead, and
  the end is recorded as it leaves (process status 143). If the program installed its own SIGTERM
  handler before init(), that handler is called instead and decides: the run then ends
  however the program does. The handler is installed from the main thread only.
- SIGKILL, ``os._exit``, OOM, power loss: nothing can run; the run stays "running" in
  the catalog and is reported "crashed" once its heartbeat is older than STALE_AFTER
  ($LODESTORE_STALE_SECONDS, 300 s) and, on this host, its process is gone.

Hooks act only on runs started by the current process: a forked child (a DataLoader
worker) that exits or is terminated leaves its parent's run alone.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from lodestore.sdk.run import Run

active: list[Run] = []  # started and not finished, in start order (current_run() is the last)


def current_run() -> Run | None:
    """The run this process started last and has not finished, or None."""
    return active[-1] if active else None


def exit_code_of(exc: BaseException | None) -> int:
    """The process exit status an exception leaving the program stands for:
    SystemExit's own code (None -> 0, a message -> 1), 130 for Ctrl-C, else 1."""
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) and not isinstance(code, bool) else 1
    if isinstance(exc, KeyboardInterrupt):
        return 128 + signal.SIGINT
    return 1


def _owned_runs() -> list[Run]:
    """Active runs this process started (a forked child inherits the parent's list)."""
    me = os.getpid()
    return [r for r in active if r._owner_pid == me]


def _finish_owned(code: int, timeout: float | None = None) -> bool:
    """Finish this process's active runs with `code`; True once done. With `timeout`
    the work runs in a helper thread, waited for that long: a signal handler interrupts
    the main thread wherever it is, possibly holding the very lock a write needs. A
    helper still blocked is kept in `_pending` (and joined at exit) and False returned."""
    runs = _owned_runs()
    if not runs:
        return True

    def work() -> None:
        for run in runs:
            try:
                run.finish(exit_code=code)
            except Exception as e:
                print(f"lodestore: could not finish run {run.id}: {e}", file=sys.stderr)

    if timeout is None:
        work()
        return True
    helper = threading.Thread(target=work, name="lodestore-finish", daemon=True)
    helper.start()
    helper.join(timeout)
    if helper.is_alive():
        _pending.append(helper)
        return False
    return True


_pending: list[threading.Thread] = []  # finishing helpers that were still blocked
PENDING_JOIN_TIMEOUT = 8.0  # at exit; docker stop allows 10 s before SIGKILL
_exit_status: int | None = None  # the code of the last sys.exit() call (see install_hooks)


def _finish_leftover_runs() -> None:
    """At interpreter exit, runs nobody finished are closed: failed if an exception is
    on its way out (sys.last_value, set by the default excepthook) or sys.exit() was
    called with a non-zero code; finished otherwise."""
    last = getattr(sys, "last_value", None)
    if last is not None:
        code = exit_code_of(last)
    else:
        code = _exit_status or 0
    for helper in _pending:  # the main thread has unwound: what blocked them is released
        helper.join(PENDING_JOIN_TIMEOUT)
        if helper.is_alive():
            print("lodestore: could not record the end of a run in time; it will be reported crashed once "
                  "its heartbeat is stale", file=sys.stderr)
    _finish_owned(code)


atexit.register(_finish_leftover_runs)
_hooks_installed = False
_sigterm_installed = False
SIGTERM_FINISH_TIMEOUT = 2.0  # then unwind the main thread instead (see on_sigterm)


def install_hooks() -> None:
    """Install, once, what records a run's end when nobody calls finish(): an excepthook
    (atexit alone cannot tell a crash from a clean exit), a sys.exit wrapper that keeps
    the exit code for the atexit hook, and a SIGTERM handler."""
    global _hooks_installed
    if not _hooks_installed:
        _hooks_installed = True
        previous_hook = sys.excepthook
        original_exit = sys.exit

        def hook(exc_type, exc, tb):
            _finish_owned(exit_code_of(exc))
            previous_hook(exc_type, exc, tb)

        def exit(status: str | int | None = None) -> NoReturn:
            global _exit_status
            _exit_status = exit_code_of(SystemExit(status))
            original_exit(status)

        sys.excepthook = hook
        exit.__doc__ = original_exit.__doc__
        sys.exit = exit
    _install_sigterm_handler()


def _install_sigterm_handler() -> None:
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; a later init() there will
    _sigterm_installed = True
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        return  # the program ignores SIGTERM, so it does not end the run either

    def on_sigterm(signum: int, frame: Any) -> None:
        if callable(previous):
            # The program's own handler decides what SIGTERM means (checkpoint and exit,
            # or carry on); the run ends however the program then does.
            previous(signum, frame)
            return
        global _exit_status
        code = 128 + signum
        if _finish_owned(code, timeout=SIGTERM_FINISH_TIMEOUT):
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)  # die by the signal, as without us (status 143 in a shell)
            return
        # Finishing is blocked by what this (main) thread was doing when the signal came,
        # typically a catalog write holding the run's lock. Unwind it instead: its `with`
        # blocks release their locks, the pending finish completes, and the process exits
        # with status 143; the atexit hook waits for the pending finish.
        _exit_status = code
        raise SystemExit(code)

    signal.signal(signal.SIGTERM, on_sigterm)
