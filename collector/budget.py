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


#: Bytes of memory reserved per body byte of an HTTP request: the body, its decoded table and the
#: write-ahead copy.
MEMORY_PER_BODY_BYTE = 3
#: What a request of unknown length (chunked) reserves before its body is read.
CHUNKED_RESERVATION = 16 * 1024 * 1024


class Reservation:
    """Bytes of the memory budget held by one HTTP request."""

    def __init__(self, budget: MemoryBudget, size: int) -> None:
        self.budget = budget
        self.size = size if budget.try_acquire(size) else 0
        self.held = self.size > 0 or size == 0

    @classmethod
    def for_request(cls, budget: MemoryBudget, length: int | None, max_body_bytes: int) -> "Reservation":
        """What a request announcing ``length`` bytes (None: chunked) reserves before it is read."""
        guess = length if length is not None else min(max_body_bytes, CHUNKED_RESERVATION)
        return cls(budget, MEMORY_PER_BODY_BYTE * guess)

    def grow_to(self, size: int) -> bool:
        """Hold ``size`` bytes in all; False (holding what it held) when the budget cannot give more."""
        if size <= self.size:
            return True
        if not self.budget.try_acquire(size - self.size):
            return False
        self.size = size
        return True

    def grow_to_decoded(self, body_bytes: int, decoded_bytes: int) -> bool:
        """``grow_to`` the size a read body of ``body_bytes`` that decompressed to ``decoded_bytes`` holds."""
        return self.grow_to(body_bytes + (MEMORY_PER_BODY_BYTE - 1) * decoded_bytes)

    def release(self) -> None:
        """Give everything back."""
        self.budget.release(self.size)
        self.size = 0
