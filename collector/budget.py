"""The in-memory budget: bytes held by requests in flight and by batches not yet spooled.

HTTP requests ask with ``try_acquire`` and are answered 429 when it is spent; stream readers
``acquire`` and simply stop reading until bytes are released, which slows the sender through
TCP flow control. Batches already accepted ``force`` their bytes in, so the budget may be
overdrawn for a moment; new input then waits until the spool writer catches up.
"""

from __future__ import annotations

import asyncio
from collections import deque


class MemoryBudget:
    """A byte budget shared by every protocol of one collector (used from one event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future]] = deque()

    def try_acquire(self, size: int) -> bool:
        """Take ``size`` bytes if they fit now (a request larger than the whole budget fits an empty one)."""
        if self._waiters or not self._fits(size):
            return False
        self.used += size
        return True

    def _fits(self, size: int) -> bool:
        return self.used + size <= self.limit or self.used == 0

    async def acquire(self, size: int) -> None:
        """Take ``size`` bytes, waiting (first come, first served) until they fit."""
        if self.try_acquire(size):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((size, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(size)
            else:
                self._waiters = deque(item for item in self._waiters if item[1] is not waiter)
                self._wake()
            raise

    def force(self, size: int) -> None:
        """Take ``size`` bytes even past the limit (for data already accepted)."""
        self.used += size

    def release(self, size: int) -> None:
        """Give ``size`` bytes back and wake the waiters that now fit."""
        self.used = max(0, self.used - size)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, waiter = self._waiters.popleft()
            if not waiter.done():
                self.used += size
                waiter.set_result(None)

    @property
    def exhausted(self) -> bool:
        """Whether new input would be refused or made to wait."""
        return self.used >= self.limit or bool(self._waiters)
