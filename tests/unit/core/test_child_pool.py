"""A process pool's processes end when the process that made them is killed outright (core.child_pool): a server
killed by SIGKILL or the OOM killer leaves no scrypt worker waiting for ever on its task queue."""
import os
import subprocess
import sys
import time

PARENT = """
import os, signal, sys
from core.child_pool import child_pool
pool = child_pool(2, niceness=5)
pids = set()
while len(pids) < 2:  # until both processes have started and run a task
    pids |= {f.result() for f in [pool.submit(os.getpid) for _ in range(8)]}
print(pool.submit(os.nice, 0).result() - os.nice(0), flush=True)  # the niceness the pool's processes run at
print(" ".join(map(str, sorted(pids))), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_pools_processes_exit_when_their_parent_is_killed():
    parent = subprocess.run([sys.executable, "-c", PARENT], capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert parent.returncode == -9, parent.stderr
    niceness, listed = parent.stdout.splitlines()
    assert int(niceness) == 5 or os.nice(0) + 5 > 19
    pids = [int(p) for p in listed.split()]
    assert len(pids) == 2 and all(p != parent.returncode for p in pids)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if _alive(p)], "pool processes outlived their parent"
