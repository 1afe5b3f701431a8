"""Items made by a background thread a few ahead of the consumer (lazy HDF5 reads overlap
the compiled steps)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

Item = TypeVar("Item")


def prefetched(items: Iterator[Item], depth: int) -> Iterator[Item]:
    """`items` produced by a background thread, at most `depth` ahead of the consumer; an
    exception in the thread is raised in the consumer."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for item in items:
                buffer.put(item)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(exc)
        buffer.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while (item := buffer.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
