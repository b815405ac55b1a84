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


def test_the_enrolment_pool_runs_at_idle_priority_and_the_openings_pool_does_not():
    """Enrolments (any agent or supervisor can keep them busy) run under SCHED_IDLE, so their scrypt never takes a
    core from a request; the opening's unwraps keep nice 10, a share of the CPU on a busy machine. "low" puts the
    enrolments at nice 10 too."""
    from trading.routes.bids import enrolment_pool, sealing_pool
    for pool, policy in ((enrolment_pool("idle", workers=1), os.SCHED_IDLE),
                         (enrolment_pool("low", workers=1), os.SCHED_OTHER),
                         (sealing_pool(workers=1), os.SCHED_OTHER)):
        try:
            assert pool.submit(os.sched_getscheduler, 0).result(timeout=120) == policy
            assert pool.submit(os.nice, 0).result(timeout=120) - os.nice(0) == 10 or os.nice(0) + 10 > 19
        finally:
            pool.shutdown()
