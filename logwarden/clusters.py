"""Start or connect to the Dask and Ray clusters logwarden runs on.

On external clusters (``--dask-scheduler``, ``--ray-address``), their restarts are survived as follows:

- Dask scheduler: the client reconnects by itself for ``DASK_TIMEOUT``; past that,
  ``DaskConnection.reconnect`` makes a new client (the spool processor calls it). Batches in flight go
  back to the spool (``processing.pipeline``).
- Ray head: its GCS, its raylet and every actor die with it, and a driver cannot carry on with a new
  head (its actor handles and objects belong to the dead one). On the head's machine Ray ends the driver
  itself at once (it lost its local object store). Elsewhere ``RayConnection.lost`` notices (the GCS
  refuses connections) and ``logwarden up`` stops and exits with ``EXIT_CLUSTER_LOST``. Either way the
  service manager starts it again, and it resumes the detectors from their checkpoints.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def _use_token_auth_when_available() -> None:
    """Ray reads this at import, so it runs before Ray is imported.

    ``ray start --head`` turns token authentication on (Ray >= 2.59) and keeps the token in
    ~/.ray/auth_token; a driver connecting by address must then ask for token mode itself.
    A cluster without authentication accepts a token-mode driver too."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or \
            os.path.exists(os.path.expanduser("~/.ray/auth_token")):
        os.environ["RAY_AUTH_MODE"] = "token"


_use_token_auth_when_available()

log = logging.getLogger(__name__)
DASK_TIMEOUT = "30s"  # connecting to an external scheduler, and reconnecting after losing it
RAY_LOST_AFTER = 5.0  # seconds of a GCS refusing connections before the Ray cluster counts as lost (a blip is not)
EXIT_CLUSTER_LOST = 75  # EX_TEMPFAIL: start again once the cluster is back


class ClusterLost(RuntimeError):
    """The Ray cluster the stack ran on is gone (its head died); the stack must be started again."""


@dataclass
class DaskConnection:
    """A Dask client, on a LocalCluster it owns or on an existing scheduler."""

    client: object
    cluster: object | None = None
    scheduler: str | None = None

    @classmethod
    def open(cls, scheduler: str | None, workers: int, dashboard_port: int | None, host: str,
             adaptive_max: int | None = None, spool_dir: Path | None = None) -> "DaskConnection":
        """Connect to ``scheduler``, or start a LocalCluster of ``workers`` single-threaded processes;
        with ``adaptive_max``, the local cluster scales between 1 and that many workers with the depth
        of ``spool_dir``."""
        from distributed import Client, LocalCluster

        # distributed sets its own loggers to INFO; follow the level logwarden runs at.
        logging.getLogger("distributed").setLevel(max(logging.getLogger().level, logging.WARNING))
        if scheduler:
            if adaptive_max:
                raise ValueError("--adaptive scales the local cluster; an external scheduler is scaled by "
                                 "its own cluster manager")
            return cls(Client(scheduler, timeout=DASK_TIMEOUT), scheduler=scheduler)
        # The scheduler always serves HTTP (health, metrics); without a dashboard port, any free port.
        dashboard = f"{host}:{dashboard_port if dashboard_port is not None else 0}"
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host=host,
                               dashboard_address=dashboard, silence_logs=logging.WARNING)
        if adaptive_max:
            from logwarden.processing.adaptive import SpoolDepthAdaptive

            cluster.adapt(Adaptive=SpoolDepthAdaptive, spool_dir=spool_dir, minimum=1, maximum=adaptive_max,
                          interval="500ms", wait_count=6)
        return cls(Client(cluster), cluster)

    def reconnect(self) -> object:
        """A new client on the external scheduler, in place of one that gave up reconnecting; raises
        (``OSError``, ``TimeoutError``) while the scheduler is unreachable."""
        from distributed import Client

        if self.scheduler is None:
            raise RuntimeError("only a connection to an external Dask scheduler reconnects")
        client = Client(self.scheduler, timeout=DASK_TIMEOUT)
        old, self.client = self.client, client
        try:
            old.close()
        except Exception:  # noqa: BLE001 - the old client is gone either way
            log.debug("closing the old Dask client failed", exc_info=True)
        log.warning("connected to the Dask scheduler %s again (a new client)", self.scheduler)
        return client

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard URL, when it has one."""
        try:
            return self.client.dashboard_link
        except Exception:
            return None

    def close(self) -> None:
        """Close the client, and the cluster if this connection started it."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


@dataclass
class RayConnection:
    """A Ray driver connection: to a local Ray it starts, or to an existing cluster."""

    address: str | None
    dashboard_url: str | None = None
    temp_dir: str | None = field(default=None, repr=False)
    gcs_address: str | None = None
    _unreachable_since: float | None = field(default=None, repr=False)

    @classmethod
    def open(cls, address: str | None, dashboard_port: int | None, host: str, num_cpus: int) -> "RayConnection":
        """Connect to ``address`` (``HOST:6379``), or start a local Ray bound to ``host``."""
        import ray

        if address:
            context = ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            return cls(address, gcs_address=context.address_info.get("gcs_address") or address)
        temp_dir = tempfile.mkdtemp(prefix="lw-ray-")
        context = ray.init(num_cpus=num_cpus, include_dashboard=dashboard_port is not None,
                           dashboard_host=host, dashboard_port=dashboard_port or 8265,
                           _node_ip_address=host, _temp_dir=temp_dir, logging_level=logging.WARNING,
                           log_to_driver=False)
        url = context.dashboard_url
        return cls(None, f"http://{url}" if url else None, temp_dir, context.address_info.get("gcs_address"))

    def lost(self, grace: float = RAY_LOST_AFTER) -> str | None:
        """Why the Ray cluster counts as lost (its GCS has refused connections for ``grace`` seconds), or
        None while it answers. Probed with a TCP connection, which cannot hang on a dead cluster as a Ray
        call can."""
        if not self.gcs_address:
            return None
        host, _, port = self.gcs_address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                self._unreachable_since = None
                return None
        except OSError as exc:
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since < grace:
                return None
            return f"the Ray head at {self.gcs_address} is gone (GCS: {exc.strerror or exc})"

    def close(self) -> None:
        """Disconnect (and stop the local Ray, if this connection started it)."""
        import ray

        ray.shutdown()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
