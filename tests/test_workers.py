"""DaemonPool: bounded threads, first in first out, and nothing left running that holds the process."""

from __future__ import annotations

import threading
import time

from longdoc.workers import DaemonPool


def test_calls_run_on_at_most_size_threads_and_deliver_results_and_errors() -> None:
    pool = DaemonPool(3, "test")
    running, most = 0, 0
    lock = threading.Lock()

    def call(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        if n == 5:
            raise ValueError("five")
        return n * n

    futures = [pool.submit(call, n) for n in range(9)]
    assert [f.exception(timeout=5) is not None for f in futures] == [n == 5 for n in range(9)]
    assert [f.result() for n, f in enumerate(futures) if n != 5] == [n * n for n in range(9) if n != 5]
    assert most == 3
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("test-"))
    pool.shutdown()


def test_shutdown_cancels_what_has_not_started_and_refuses_new_calls() -> None:
    pool = DaemonPool(1, "test-shutdown")
    release = threading.Event()
    first = pool.submit(release.wait, 5)
    queued = pool.submit(lambda: "never")
    time.sleep(0.05)  # the first call is running
    pool.shutdown()
    release.set()
    assert first.result(timeout=5) is True
    assert queued.cancelled()
    assert pool.submit(lambda: "late").cancelled()
