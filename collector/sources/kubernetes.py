"""Kubernetes metadata from the names of container log files, and the path parts a ``service`` template uses.

The kubelet keeps each container's log at::

    /var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart count>.log

and links it from::

    /var/log/containers/<pod>_<namespace>_<container>-<container id>.log

Neither pods, namespaces nor containers may hold ``_`` (DNS names), so both names split without
ambiguity. Following a link, both are read: the link gives the container id, its target the pod uid
and the restart count.
"""
from __future__ import annotations

import os
import re
from pathlib import PurePath

_PODS = re.compile(
    r"(?:^|/)pods/(?P<namespace>[^_/]+)_(?P<pod>[^_/]+)_(?P<pod_uid>[^_/]+)/(?P<container>[^/]+)/"
    r"(?P<restart_count>\d+)\.log(?:\.[^/]*)?$"
)
_CONTAINERS = re.compile(
    r"(?:^|/)containers/(?P<pod>[^_/]+)_(?P<namespace>[^_/]+)_(?P<container>[^/]+)-(?P<container_id>[0-9a-f]{64})"
    r"\.log$"
)
KEYS = ("namespace", "pod", "pod_uid", "container", "container_id", "restart_count")


def pod_metadata(path: str) -> dict[str, object]:
    """``namespace``, ``pod``, ``pod_uid``, ``container``, ``container_id``, ``restart_count`` as far as the
    file's name (and, for a link, its target's) tells them; empty for other files."""
    found: dict[str, object] = {}
    names = [path]
    try:
        real = os.path.realpath(path)
    except OSError:
        real = path
    if real != path:
        names.append(real)
    for name in names:
        for pattern in (_PODS, _CONTAINERS):
            match = pattern.search(name)
            if match:
                for key, value in match.groupdict().items():
                    found.setdefault(key, int(value) if key == "restart_count" else value)
    return {key: found[key] for key in KEYS if key in found}


def path_fields(path: str, metadata: dict[str, object]) -> dict[str, str]:
    """The values a ``service`` template may name: the pod metadata, ``file`` (the name without its
    extensions) and ``dir`` (the folder's name)."""
    pure = PurePath(path)
    fields = {key: str(value) for key, value in metadata.items()}
    fields["file"] = pure.name.split(".", 1)[0] or pure.name
    fields["dir"] = pure.parent.name
    return fields


__all__ = ["KEYS", "path_fields", "pod_metadata"]
