"""Runs every call of the single ``RunWriter`` on one dedicated thread.

DuckDB inserts and window queries take milliseconds; on the event loop they would delay
sends. One worker thread keeps them off the loop and keeps the writer single-threaded
(DuckDB connections must not be used by two threads at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class WriterThread:
    """``await writer.call(fn, *args)`` runs ``fn`` on the writer's own thread."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phase5-writer")

    def call_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._executor.submit(fn, *args, **kwargs).result()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        future = self._executor.submit(fn, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
