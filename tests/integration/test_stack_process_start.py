"""Starting the stack's servers: a process just started is judged alive by its pid, not its title.

redis-server and nginx rewrite their process titles as they start; for a moment the command
line may lack the word the pid file names. ``rapport up`` once reported a healthy redis-server
as "did not start" that way.
"""
from __future__ import annotations

import os
import signal
import time

from shared.stack import processes


def test_a_started_process_whose_command_line_lacks_its_marker_has_not_exited(tmp_path):
    pid = processes.spawn(tmp_path, "sleeper", ["sleep", "30"], marker="a-word-not-in-its-command-line")
    try:
        assert processes.running_pid(tmp_path, "sleeper") is None  # the marker check alone says "gone"
        assert not processes.exited(pid)
    finally:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not processes.exited(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes.exited(pid)
