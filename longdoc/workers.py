"""`DaemonPool`: a few threads that run calls in submission order and never hold the process open.

`concurrent.futures.ThreadPoolExecutor` joins its threads when the interpreter exits, so after
Ctrl-C a process with requests in flight would hang until each one answered or timed out (two
minutes by default). These threads are daemons: the process ends at once, and since every
finished step is already in the result cache and every output file is written atomically,
nothing finished is lost.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")
_STOP = None  # sent once per thread by shutdown()


class DaemonPool:
    """At most `size` daemon threads, started as work arrives, running submitted calls first in, first out."""

    def __init__(self, size: int, name: str) -> None:
        assert size >= 1, "a pool needs at least one thread"
        self.size, self.name = size, name
        self._queue: queue.SimpleQueue[tuple[Future, Callable, tuple] | None] = queue.SimpleQueue()  # type: ignore[type-arg]
        self._lock = threading.Lock()
        self._threads = 0
        self._closed = False

    def submit(self, call: Callable[..., T], *args: object) -> Future[T]:
        """Run `call(*args)` on a pool thread; its result or exception arrives in the future
        (cancelled, if the pool is shut down before it starts)."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:  # after shutdown nothing runs: the call is cancelled like a queued one
                future.cancel()
                return future
            self._queue.put((future, call, args))
            if self._threads < self.size:
                self._threads += 1
                threading.Thread(target=self._work, name=f"{self.name}-{self._threads}", daemon=True).start()
        return future

    def shutdown(self) -> None:
        """Refuse new calls, cancel the queued ones, and let each thread end after its current call."""
        with self._lock:
            self._closed = True
            threads = self._threads
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in range(threads):
            self._queue.put(_STOP)

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            future, call, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call(*args)
            except BaseException as error:  # noqa: BLE001 - delivered to whoever waits on the future
                future.set_exception(error)
            else:
                future.set_result(result)
