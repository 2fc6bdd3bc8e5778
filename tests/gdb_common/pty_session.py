#!/usr/bin/env python3
"""Drive an interactive program (GDB) through a pseudo-terminal, for tests/gdb_*.rs.

Usage: pty_session.py TIMEOUT_SECONDS STEPS_JSON PROGRAM [ARGS...]

STEPS_JSON is a list of [WAIT_FOR, SEND] pairs: wait until the program has
written WAIT_FOR (after the text the previous step waited for), then type
SEND and Enter. After the last step the program is left to finish. The whole
transcript goes to stdout; the exit status is the program's, or 124 when a
step or the end did not come within TIMEOUT_SECONDS (the transcript then ends
with a line saying what was awaited).

Why a pty: GDB asks its questions ("Make breakpoint pending...? (y or [n])")
and keeps command history only when its input is a terminal; with a pipe it
answers for the user. The standard library's `pty` is enough, so the tests
need no `expect` package.
"""

import json
import os
import pty
import select
import signal
import sys
import time


def main():
    timeout = float(sys.argv[1])
    steps = json.loads(sys.argv[2])
    argv = sys.argv[3:]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "dumb"  # no colours or cursor movement in the transcript
        os.execvp(argv[0], argv)
    transcript = bytearray()
    seen = 0  # where the next WAIT_FOR is looked for

    def read_some(deadline):
        """Append what the program wrote; False at end of output or at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return False
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the program closed the terminal (it exited)
            return False
        if not data:
            return False
        transcript.extend(data)
        return True

    def give_up(what):
        sys.stdout.write(transcript.decode(errors="replace"))
        sys.stdout.write(f"\n[pty_session: timed out waiting for {what!r}]\n")
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.exit(124)

    for wait_for, send in steps:
        deadline = time.monotonic() + timeout
        needle = wait_for.encode()
        while transcript.find(needle, seen) < 0:
            if not read_some(deadline):
                give_up(wait_for)
        seen = transcript.find(needle, seen) + len(needle)
        os.write(fd, send.encode() + b"\n")
    deadline = time.monotonic() + timeout
    while read_some(deadline):
        pass
    if time.monotonic() >= deadline:
        give_up("the end of the session")
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(transcript.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
