"""logwarden: log monitoring on Dask and Ray.

This package holds the command line and the wiring of the layers
(collector, processing, monitoring, alerting, storage); ``logwarden.common``
holds the few helpers every layer shares (YAML with line numbers, durations,
the record layout).
"""

__version__ = "0.1.0"
