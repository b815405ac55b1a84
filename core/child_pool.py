"""Process pools whose processes end with the process that made them.

A `ProcessPoolExecutor`'s processes share its task queue, and each holds the queue's write end open. When the
parent is killed outright (SIGKILL, the OOM killer) it never sends them the sentinel, and none of them ever reads
EOF: they wait for ever, each holding its interpreter's memory. Each process here watches its parent and exits
once it is gone. This module imports nothing heavy: a spawned process imports it before its first task.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

PARENT_CHECK_S = 1.0


def _start(niceness: int, idle: bool, parent: int, initializer: Callable[..., None] | None,
           initargs: tuple) -> None:
    if niceness:
        os.nice(niceness)
    if idle:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    if initializer is not None:
        initializer(*initargs)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def child_pool(workers: int, *, niceness: int = 0, idle: bool = False,
               initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """Spawned processes (forking a process that runs an event loop and database connections is not safe), at
    `niceness` above the parent's, each running `initializer(*initargs)` first and ending when the parent does.

    `idle` runs them under Linux's SCHED_IDLE policy: any ordinary task that wakes takes the core from them at
    once (at a positive nice value the running job first finishes its time slice), and they get only the CPU
    that nothing else wants, so a machine kept busy by ordinary work can hold their jobs back indefinitely."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start, initargs=(niceness, idle, os.getpid(), initializer, initargs))
