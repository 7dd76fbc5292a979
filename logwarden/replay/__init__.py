"""``logwarden replay``: push existing log files through the pipeline.

Files are cut into large chunks (``processing.chunks``); each chunk is parsed and validated as a
whole (``processing.chunk_records.parse_chunk``): native JSON lines and OTLP JSON through the
collector's columnar path, in this process; line formats (BSD syslog as columns, any other format
record by record) on the Dask workers, a few chunks per worker in flight. Each chunk comes back as an
Arrow table, written into spool batches in file order, paced by ``--speed``. Records the schema
refuses go to the dead-letter store with their bytes and the reason. The running stack on the same
data dir processes the batches; when none runs, the replay command starts one without a collector.
"""
from logwarden.replay.files import ReplayOptions, ReplaySummary, replay_files
from logwarden.replay.pacing import parse_speed

__all__ = ["ReplayOptions", "ReplaySummary", "parse_speed", "replay_files"]
