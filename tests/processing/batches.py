"""Spool batches for the processing tests."""
from __future__ import annotations

from logwarden.collector.spool import Spool
from logwarden.collector.validation import RecordValidator, SkewLimits
from logwarden.common.paths import DataDir

VALIDATOR = RecordValidator(skew=SkewLimits(max_future=1e10, max_past=1e10))


def write_batch(paths: DataDir, batch_id: str, size: int = 20) -> None:
    """A spool batch of ``size`` records of one service, a second apart."""
    rows = [VALIDATOR.normalize({"timestamp": f"2026-11-22T10:00:{i:02d}Z", "level": "INFO", "service": "svc",
                                 "message": f"job {i} finished"}, f"{batch_id}-{i}", "t", "test", 0)
            for i in range(size)]
    Spool(paths.spool).write(batch_id, rows)
