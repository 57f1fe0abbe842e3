"""ReadAhead: pages come out in order, prepared in another thread; errors surface where they
happened; an early stop ends the thread and closes the source."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sync.prefetch import ReadAhead


def test_items_come_out_in_order_prepared_in_the_reader_thread() -> None:
    consumer = threading.get_ident()
    seen_in: set[int] = set()

    def prepare(i: int) -> tuple[int, int]:
        seen_in.add(threading.get_ident())
        return i, i * i

    with ReadAhead(lambda: iter(range(50)), prepare, depth=2) as reader:
        assert list(reader) == [(i, i * i) for i in range(50)]
    assert seen_in and consumer not in seen_in


def test_an_error_of_the_source_is_raised_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    got: list[int] = []
    with ReadAhead(source, lambda x: x) as reader, pytest.raises(RuntimeError, match="page 3 failed"):
        for item in reader:
            got.append(item)
    assert got == [1, 2]


def test_an_error_of_prepare_is_raised_at_its_item() -> None:
    def prepare(i: int) -> int:
        if i == 3:
            raise ValueError("cannot map 3")
        return i

    got: list[int] = []
    with ReadAhead(lambda: iter(range(10)), prepare) as reader, pytest.raises(ValueError, match="cannot map 3"):
        for item in reader:
            got.append(item)
    assert got == [0, 1, 2]


def test_reads_at_most_depth_ahead_and_an_early_stop_closes_the_source() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    reader = ReadAhead(source, lambda x: x, depth=2)
    it = iter(reader)
    assert next(it) == 0
    time.sleep(0.3)  # give the thread every chance to run ahead
    # one consumed, two queued, one prepared and waiting for room
    assert len(produced) <= 4, produced
    reader.close()
    assert closed.wait(5), "the source was not closed"
    assert len(produced) <= 5


def test_closing_before_iterating_is_harmless() -> None:
    ReadAhead(lambda: iter(range(3)), lambda x: x).close()
