"""A plugin folder's modules, each imported once: how the checks' registry and the fixes find theirs.

`checks/` and `fixes/` register what they hold when imported; the registry imports every module of
its folder before it answers. It is asked often in one process (every id resolved, every run of the
checks, a test worker's thousands of command lines), so the folder is listed again only when it
changed (its mtime: a module added or removed), not at every question.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from types import ModuleType

#: (folder, mtime) of each of a package's folders -> the module names found there
_LISTED: dict[tuple[tuple[str, int], ...], list[str]] = {}


def _mtime(folder: str) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return -1


def import_all(package: ModuleType) -> None:
    """Import every module of `package` (already imported ones cost a lookup in sys.modules)."""
    key = tuple((folder, _mtime(folder)) for folder in package.__path__)
    names = _LISTED.get(key)
    if names is None:
        names = _LISTED[key] = [info.name for info in pkgutil.iter_modules(package.__path__)]
    for name in names:
        importlib.import_module(f"{package.__name__}.{name}")
