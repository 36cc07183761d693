"""Names a package loads on first use: the module ``__getattr__`` (PEP 562) behind
``tfcro``, ``tfcro.data``, ``tfcro.evaluation`` and ``tfcro.experiments``, so that
importing them stays light (no TensorFlow until a part that needs it is used).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_getattr(
    package: str, names: Mapping[str, str], submodules: Sequence[str] = ()
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` in ``submodules`` imports
    ``package.name``; ``name`` in ``names`` is ``package.<names[name]>.name``.

    >>> __getattr__ = lazy_getattr("tfcro.evaluation", {"top_n": "catalog"})
    >>> __getattr__("missing")
    Traceback (most recent call last):
    ...
    AttributeError: module 'tfcro.evaluation' has no attribute 'missing'
    """

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
