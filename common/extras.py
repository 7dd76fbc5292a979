"""Optional extras: features that need a package installed with ``pip install 'logwarden[EXTRA]'``."""
from __future__ import annotations

import importlib
from typing import Any, Iterable

from logwarden.common.yamlconf import ConfigError


def available(module: str) -> bool:
    """Whether ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require(module: str, extra: str, where: Iterable[Any] | str) -> None:
    """Refuse a configured feature whose optional package is missing.

    Raises a ConfigError at the key path ``where`` (e.g. ``("storage", "elasticsearch")``; the settings
    loader adds the file and line): ``needs the optional 'MODULE' package: pip install 'logwarden[EXTRA]'``.
    """
    if not available(module):
        raise ConfigError.at(where if isinstance(where, str) else tuple(where),
                             f"needs the optional {module!r} package: pip install 'logwarden[{extra}]'")


__all__ = ["available", "require"]
