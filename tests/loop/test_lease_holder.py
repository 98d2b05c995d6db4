"""A lease left by a dead process of this host is recognised; live or remote holders are not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from forgeml.loop._runner import _dead_here, default_holder


def test_a_dead_local_holder_is_recognised():
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    host = socket.gethostname()
    assert _dead_here(f"{host}:{finished.pid}:abcd1234")
    assert not _dead_here(f"{host}:{os.getpid()}:abcd1234")  # this process
    assert not _dead_here(f"{host}:{os.getppid()}:abcd1234")  # alive
    assert not _dead_here(f"elsewhere-{host}:{finished.pid}:abcd1234")  # another machine
    assert not _dead_here("not a holder")
    mine = default_holder().split(":")
    assert mine[0] == host and mine[1] == str(os.getpid()) and len(mine[2]) == 8
