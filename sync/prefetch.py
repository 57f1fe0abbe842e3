"""Read ahead: fetch (and prepare) the next page of a change feed while the current one is written.

An initial sync spends its time alternating between waiting for the source's next page and
waiting for the target's write calls; reading the next page in a background thread overlaps the
two. The thread only reads: it never touches the state store, and the cursor still moves in the
consumer's transaction once a page is written, so a crash loses nothing it read ahead.
"""
from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

import structlog

T = TypeVar("T")
U = TypeVar("U")

log = structlog.get_logger(__name__)

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ReadAhead(Generic[T, U]):
    """Iterate ``source`` in a thread, up to ``depth`` prepared items ahead of the consumer.

    Items come out in order, each passed through ``prepare`` in the thread; an exception the
    source or ``prepare`` raises is re-raised in the consumer at that position. Use as a context
    manager (or call :meth:`close`) so an early stop ends the thread.
    """

    def __init__(self, source: Callable[[], Iterable[T]], prepare: Callable[[T], U], *, depth: int = 2,
                 name: str = "read-ahead") -> None:
        self._source = source
        self._prepare = prepare
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        # The thread logs with the consumer's bound context (run, pipeline).
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name=name, daemon=True)
        self._started = False

    def __enter__(self) -> ReadAhead[T, U]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[U]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop reading ahead and wait for the thread (it finishes the request it is in)."""
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a thread waiting for room in the queue
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass

    def _run(self) -> None:
        iterator = iter(())  # type: Iterator[T]
        try:
            iterator = iter(self._source())
            for item in iterator:
                if self._stop.is_set():
                    return
                if not self._put(self._prepare(item)):
                    return
            self._put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 - the consumer has its answer already
                    log.warning("read_ahead.close_failed", error=repr(exc))

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False
