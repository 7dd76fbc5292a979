"""Who the user is: the user directory (user id → name, department, privileged) joined on ``user_id``.

The directory is a CSV file with a header (``user_id``, ``name``, ``department``, ``privileged``) or a
YAML file (``users: {alice: {name: Alice Liddell, department: Finance, privileged: yes}}``, or a list
of mappings with ``user_id``). ``privileged`` takes yes/no, true/false, 1/0. The file is read on each
worker and again when it changes; the join is one hash look-up over the batch's distinct user ids.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from logwarden.common.yamlconf import ConfigError, load_yaml
from logwarden.processing.watched import CACHE

log = logging.getLogger(__name__)

USER_FIELDS = (pa.field("user_name", pa.string()), pa.field("user_department", pa.string()),
               pa.field("user_privileged", pa.bool_()))
KEYS = ("user_id", "name", "department", "privileged")
TRUE, FALSE = frozenset({"yes", "y", "true", "1"}), frozenset({"no", "n", "false", "0", ""})


@dataclass(frozen=True)
class UsersConfig:
    """``processing.users``: the directory file (None: no user columns are filled) and its reload period."""

    path: str | None = None
    reload: float = 10.0


@dataclass(frozen=True)
class User:
    """One entry of the directory."""

    user_id: str
    name: str | None = None
    department: str | None = None
    privileged: bool = False


def privileged_flag(value: Any, where: str) -> bool:
    """yes/no, true/false, 1/0 (any case) as a bool; ValueError naming ``where`` otherwise."""
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise ValueError(f"{where}: privileged: expected yes or no, got {value!r}")


def read_directory(path: str | Path) -> list[User]:
    """The users of a CSV or YAML directory file; ConfigError (file and line) when it is malformed."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return _read_yaml(path)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip().lower() for name in reader.fieldnames or ()]
        if "user_id" not in header or set(header) - set(KEYS):
            raise ConfigError(str(path), 1, f"expected the columns {', '.join(KEYS)} (user_id required)")
        reader.fieldnames = header
        users = []
        for row in reader:
            try:
                users.append(_user(row, f"{path}:{reader.line_num}"))
            except ValueError as exc:
                raise ConfigError(str(path), reader.line_num, str(exc).split(": ", 1)[1]) from None
        return users


def _user(raw: dict[str, Any], where: str) -> User:
    user_id = str(raw.get("user_id") or "").strip()
    if not user_id:
        raise ValueError(f"{where}: user_id: missing")
    return User(user_id, (raw.get("name") or None), (raw.get("department") or None),
                privileged_flag(raw.get("privileged"), where))


def _read_yaml(path: Path) -> list[User]:
    doc = load_yaml(path)
    data = (doc.data or {}).get("users") if isinstance(doc.data, dict) else doc.data
    if isinstance(data, dict):
        items = [({"user_id": key, **(value or {})}, ["users", key]) for key, value in data.items()]
    elif isinstance(data, list):
        items = [(value, ["users", index]) for index, value in enumerate(data)]
    else:
        raise doc.error([], "a user directory is 'users:' with a mapping of user id to its entry, or a list")
    users = []
    for raw, where in items:
        if not isinstance(raw, dict) or set(raw) - set(KEYS):
            raise doc.error(where, f"expected a mapping of {', '.join(KEYS[1:])}")
        try:
            users.append(_user({k: (None if v is None else v if k == "privileged" else str(v))
                                for k, v in raw.items()}, "users"))
        except ValueError as exc:
            raise doc.error(where, str(exc).split(": ", 1)[1]) from None
    return users


@dataclass
class Directory:
    """The directory as columns, with a hash index on the user id."""

    index: pd.Index
    names: pa.Array
    departments: pa.Array
    privileged: pa.Array

    @classmethod
    def build(cls, users: list[User]) -> "Directory":
        """Index ``users`` (a user id listed twice: its last entry)."""
        latest = {user.user_id: user for user in users}
        entries = list(latest.values())
        return cls(pd.Index([u.user_id for u in entries]), pa.array([u.name for u in entries], pa.string()),
                   pa.array([u.department for u in entries], pa.string()),
                   pa.array([u.privileged for u in entries], pa.bool_()))

    def columns(self, user_ids: pa.ChunkedArray | pa.Array) -> dict[str, pa.Array]:
        """The USER_FIELDS columns for ``user_ids`` (null where the user is not in the directory)."""
        encoded = pc.dictionary_encode(user_ids)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.unify_dictionaries().combine_chunks()
        positions = self.index.get_indexer(encoded.dictionary.to_numpy(zero_copy_only=False)) \
            if len(encoded.dictionary) and len(self.index) else np.full(len(encoded.dictionary), -1)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        rows = np.where(codes >= 0, positions[np.maximum(codes, 0)] if len(positions) else -1, -1)
        take = pa.array(np.maximum(rows, 0), mask=rows < 0)
        if not len(self.index):
            return {f.name: pa.nulls(len(rows), f.type) for f in USER_FIELDS}
        return {"user_name": self.names.take(take), "user_department": self.departments.take(take),
                "user_privileged": self.privileged.take(take)}


def load_directory(config: UsersConfig) -> Directory:
    """The directory of ``config``, from the process cache (read again when the file changed)."""
    if config.path is None:
        raise ValueError("no user directory configured")
    return CACHE.get(("users", config.path), (config.path,), config.reload,
                     lambda: Directory.build(read_directory(config.path)))


def user_columns(config: UsersConfig, records: pa.Table) -> dict[str, pa.Array]:
    """USER_FIELDS for ``records``: null throughout when no directory is configured."""
    if config.path is None:
        return {f.name: pa.nulls(records.num_rows, f.type) for f in USER_FIELDS}
    return load_directory(config).columns(records["user_id"])
