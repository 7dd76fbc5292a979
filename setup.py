"""Packaging: every top-level folder installs under the one import name ``logwarden``.

The repository keeps the layout our user asked for (``collector/``, ``processing/``, ... at the
top), and ``package_dir`` maps each folder to ``logwarden.<folder>``. Metadata and dependencies
live in ``setup.cfg``; only this mapping needs code, so that a new subpackage is found by itself.

The compiled decoders (``*.pyx``, Cython) are built as optional extensions: without a C compiler the
install still works and the collector takes the pure-Python decoders (slower, same records).
"""
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup

# import name under logwarden -> folder in the repository
LAYERS = {
    "schemas": "schemas",
    "common": "common",
    "formats": "formats",
    "storage": "storage",
    "collector": "collector",
    "processing": "processing",
    "monitoring": "monitoring",
    "alerting": "alerting",
    "dashboard": "dashboard",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages = ["logwarden"] + [f"logwarden.{name}" for name in find_packages("logwarden")]
    package_dir = {"logwarden": "logwarden"}
    for name, folder in LAYERS.items():
        package_dir[f"logwarden.{name}"] = folder
        packages += [f"logwarden.{name}"] + [f"logwarden.{name}.{sub}" for sub in find_packages(folder)]
    return packages, package_dir


def _extensions() -> list[Extension]:
    """Every ``.pyx`` of a layer as an optional extension ``logwarden.<layer>.<...>.<name>``."""
    sources = sorted(path for folder in LAYERS.values() for path in Path(folder).rglob("*.pyx"))
    if not sources:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # a build without Cython (it is in pyproject's build requirements)
        return []
    from Cython.Compiler.Errors import CompileError

    modules = []
    for path in sources:
        layer = next(name for name, folder in LAYERS.items() if path.parts[0] == folder)
        dotted = ".".join(("logwarden", layer, *path.with_suffix("").parts[1:]))
        extension = Extension(dotted, [str(path)], optional=True, extra_compile_args=["-O2"])
        try:  # one module that does not translate leaves the others built (its Python fallback runs)
            modules += cythonize([extension], language_level=3, include_path=["."], quiet=True)
        except CompileError as exc:
            print(f"warning: {path} not compiled ({exc}); its pure-Python path will run", file=sys.stderr)
    return modules


PACKAGES, PACKAGE_DIR = _packages()
setup(packages=PACKAGES, package_dir=PACKAGE_DIR, ext_modules=_extensions())
