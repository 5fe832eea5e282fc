"""prefetched(): order, errors, and a producer thread that ends when its consumer leaves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from shared.streams import prefetched


def _prefetch_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "prefetch"]


def _wait_for_no_prefetch_threads(seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while _prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_items_arrive_in_order_and_complete() -> None:
    assert list(prefetched(range(100), depth=3)) == list(range(100))


def test_an_error_of_the_source_is_raised_to_the_consumer_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("storage went away")

    stream = prefetched(source(), depth=1)
    assert [next(stream), next(stream)] == [1, 2]
    with pytest.raises(ValueError, match="storage went away"):
        next(stream)


@pytest.mark.parametrize("source_length", [3, 1000])
def test_the_producer_stops_when_the_consumer_closes_early(source_length: int) -> None:
    """With a source of 3 and a depth of 2 the producer has finished its items and waits to hand
    over the end marker into a full buffer; with 1000 it waits to hand over an item. Both end."""
    _wait_for_no_prefetch_threads()
    stream = prefetched(iter(range(source_length)), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)  # let the producer fill the buffer
    stream.close()
    _wait_for_no_prefetch_threads()
    assert _prefetch_threads() == []
