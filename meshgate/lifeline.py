"""A process ``meshgate up`` started stops when the launcher is gone, however it went.

The launcher stops its children in order on Ctrl-C or SIGTERM; a SIGKILL (or
an OOM kill) gives it no chance, and its children, each in a session of its
own, would serve on. The launcher passes its PID in :data:`PARENT_ENV`; the
child asks the kernel for a SIGTERM when its parent exits (Linux
``PR_SET_PDEATHSIG``), which it handles as a requested stop.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["PARENT_ENV", "follow_parent"]

#: The launcher's PID, in the environment of each process it starts.
PARENT_ENV = "MESHGATE_PARENT_PID"

_PR_SET_PDEATHSIG = 1


def follow_parent(parent: int) -> None:
    """Get SIGTERM when ``parent`` exits; exit at once if it already has.

    Elsewhere than on Linux only the second half holds (no such request exists).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    # The parent may have gone before the request was made: then nobody sends it.
    if os.getppid() != parent:
        sys.exit(f"meshgate: the launcher (pid {parent}) is gone; not starting")
