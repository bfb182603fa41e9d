"""The decode prefetch: results in order, work done ahead on other threads, errors where they belong."""

from __future__ import annotations

import threading

import pytest

from omnibind.errors import InputError
from omnibind.runtime import prefetch


@pytest.mark.parametrize("ahead", [0, 1, 3])
def test_results_come_in_input_order(ahead: int) -> None:
    assert list(prefetch(range(20), lambda i: i * i, ahead)) == [i * i for i in range(20)]


def test_items_are_prepared_on_worker_threads_ahead_of_the_consumer() -> None:
    started = threading.Event()
    threads: list[str] = []

    def prepare(i: int) -> int:
        threads.append(threading.current_thread().name)
        if i == 1:
            started.set()
        return i

    results = prefetch(range(3), prepare, ahead=2)
    assert next(results) == 0
    assert started.wait(timeout=10)  # item 1 was prepared while the consumer held item 0
    assert list(results) == [1, 2]
    assert all(name.startswith("omnibind-prefetch") for name in threads)


def test_an_error_surfaces_at_its_item_after_the_earlier_ones() -> None:
    def prepare(i: int) -> int:
        if i == 2:
            raise ValueError("bad file 2")
        return i

    results = prefetch(range(5), prepare, ahead=2)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="bad file 2"):
        next(results)


def test_ahead_zero_prepares_on_the_calling_thread() -> None:
    names = list(prefetch(range(2), lambda _: threading.current_thread().name, ahead=0))
    assert names == [threading.current_thread().name] * 2


def test_a_negative_lookahead_is_refused() -> None:
    with pytest.raises(InputError, match="ahead: got -1"):
        list(prefetch(range(2), str, ahead=-1))
