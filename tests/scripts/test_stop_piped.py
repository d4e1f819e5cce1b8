#!/usr/bin/env python3
"""Ctrl-C on `scripts/run.sh | tee log` must stop the stack that run.sh started.

run.sh and test.sh stop the stack they started from an EXIT trap (tk_stack_stop_on_exit in
scripts/env.sh). A Ctrl-C reaches the whole foreground process group, so `tee` dies with the
script and the trap runs with stdout a closed pipe: a stop that printed into it died of SIGPIPE
after its first line and left the stack running. This test recreates that: a script in its own
process group starts a stack of its own (PostgreSQL only, on ports and in a folder of this test,
so nothing else is touched), installs the trap exactly as run.sh does, prints into a pipe whose
reader has gone, and gets SIGINT. The stack must then be down within the stop's bounded wait.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main() -> int:
    var = tempfile.mkdtemp(prefix="tk-stop-piped-", dir=os.path.join(ROOT, "var") if os.path.isdir(os.path.join(ROOT, "var")) else None)
    env = dict(os.environ)
    env["TK_STACK_VAR"] = var
    env["PGPORT_TK"] = str(int(env.get("PGPORT_TK", "15432")) + 13)
    stack = ["bash", os.path.join(ROOT, "scripts", "stack.sh")]
    status = lambda: subprocess.run(stack + ["status", "pg"], env=env, capture_output=True).returncode
    script = (
        f". {ROOT}/scripts/env.sh\n"
        "set -euo pipefail\n"
        "bash \"$ROOT/scripts/stack.sh\" start pg >/dev/null\n"
        "tk_stack_stop_on_exit stop\n"
        "echo started\n"
        "sleep 600\n"
    )
    # A process group of its own with SIGINT at its default (a background job ignores it), and the
    # script's stdout into `head -n1`, which exits after the first line: the closed pipe of `| tee`
    # after Ctrl-C.
    pipeline = subprocess.Popen(
        ["bash", "-c", 'bash -c "$0" | head -n1', script],
        env=env,
        stdout=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = pipeline.stdout.readline().decode().strip()
        if line != "started":
            print(f"FAIL: the script did not start its stack (read {line!r})", file=sys.stderr)
            return 1
        if status() != 0:
            print("FAIL: stack.sh status says PostgreSQL is not up after start", file=sys.stderr)
            return 1
        time.sleep(0.5)  # head has exited: the script's stdout is now a closed pipe
        os.killpg(pipeline.pid, signal.SIGINT)  # Ctrl-C
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if status() != 0:
                print("ok: Ctrl-C on a piped script stopped its stack")
                return 0
            time.sleep(0.5)
        print("FAIL: the stack is still running 60 s after Ctrl-C on the piped script",
              file=sys.stderr)
        return 1
    finally:
        try:
            os.killpg(pipeline.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        subprocess.run(stack + ["wipe", "pg"], env=env, capture_output=True)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
