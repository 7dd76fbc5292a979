"""Packaging: every top-level folder installs under the one import name ``logwarden``.

The repository keeps the layout our user asked for (``collector/``, ``processing/``, ... at the
top), and ``package_dir`` maps each folder to ``logwarden.<folder>``. Metadata and dependencies
live in ``setup.cfg``; only this mapping needs code, so that a new subpackage is found by itself.
"""
from setuptools import find_packages, setup

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


PACKAGES, PACKAGE_DIR = _packages()
setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
