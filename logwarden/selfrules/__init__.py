"""The monitor monitors itself: alerts logwarden raises about its own health, routed like any other.

One module per self-rule; every self-alert is an ``Anomaly`` of kind ``self`` and tenant ``*``:

- ``ingestion_stopped`` (CRITICAL, ``ingestion.py``): no record came in while sources are known;
- ``spool_backlog`` (HIGH, ``backlog.py``): the spool's backlog grew for a while;
- ``batch_quarantined`` (CRITICAL, ``logwarden.selfalerts``): a spool batch was quarantined;
- ``disk_low`` (HIGH, ``disk.py``): free space of the data dir under the low-water mark;
- ``dask_worker_lost`` / ``ray_actor_lost`` (HIGH, ``workers.py``): compute lost and not replaced;
- ``channel_failing`` (HIGH, ``channels.py``): an alert channel failing, told through the others.

Thresholds: ``monitoring.self_rules`` of the configuration (``logwarden.monitoring.self_rules``). The
stack checks them once a second (``SelfRules.check`` on the ``StackProbe``'s state).
"""
from __future__ import annotations

from logwarden.selfrules.base import Finding, SelfRule, SelfState
from logwarden.selfrules.engine import SelfRules, build_rules
from logwarden.selfrules.probe import StackProbe

__all__ = ["Finding", "SelfRule", "SelfRules", "SelfState", "StackProbe", "build_rules"]
