"""``python -m example.lifeline PID COMMAND``: run COMMAND, and stop it when PID is gone.

The dev stack runs each Procfile command through this. Stopped normally, honcho signals
the whole process group (this wrapper and the command) and the command stops as it likes.
But when the dev stack itself is killed (SIGKILL after a stop that took too long, a closed
terminal), nobody would signal them: the web server, worker and beat would live on as
orphans holding the port and the broker. This wrapper notices its dev stack is gone and
stops its command: SIGTERM to the group, SIGKILL after ``GRACE`` seconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

# How often the dev stack's liveness is checked, and how long a command may take to stop.
POLL = 0.5
GRACE = 10.0
PR_SET_PDEATHSIG = 1


def _parent_death_signal(sig: int) -> None:
    """Linux: have the kernel send ``sig`` when our parent (honcho's runner) dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    stack_pid, command = int(argv[0]), argv[1]
    # Honcho signals the whole group on a normal stop: the command gets it directly, and
    # this wrapper waits for it to finish instead of leaving it behind.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    runner = os.getppid()
    child = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"],
                             preexec_fn=lambda: _parent_death_signal(signal.SIGTERM))
    while True:
        try:
            return child.wait(POLL)
        except subprocess.TimeoutExpired:
            pass
        if not _alive(stack_pid) or os.getppid() != runner:
            break
    # The dev stack is gone: stop the command and anything it started (our group).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(0, signal.SIGTERM)
    try:
        return child.wait(GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(0, signal.SIGKILL)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
