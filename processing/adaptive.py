"""Dask adaptive scaling driven by the spool: as many workers as the waiting batches need."""
from __future__ import annotations

import math
from pathlib import Path

from distributed.deploy.adaptive import Adaptive


class SpoolDepthAdaptive(Adaptive):
    """Dask's ``Adaptive`` with the target taken from the spool depth (``batches_per_worker`` each),
    between ``minimum`` and ``maximum``; Dask's own machinery starts and retires the workers."""

    def __init__(self, cluster, spool_dir: str | Path, batches_per_worker: int = 2, **kwargs) -> None:
        self.spool_dir = Path(spool_dir)
        self.batches_per_worker = batches_per_worker
        super().__init__(cluster, **kwargs)

    async def target(self) -> int:
        """Workers wanted for the batches waiting now."""
        depth = sum(1 for _ in self.spool_dir.glob("*.parquet"))
        wanted = math.ceil(depth / self.batches_per_worker)
        return max(self.minimum, min(self.maximum, wanted))
