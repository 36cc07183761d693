"""Argument checks shared by the whole package, worded the Keras way.

Every check raises ``ValueError("`name` should be <rule>. Received: name=<value>")``
naming the parameter, what was received and what is allowed, and returns the
value in its canonical type. No TensorFlow here: the data and serving layers
use these checks too.

>>> check_int("epochs", 3)
3
>>> check_int("epochs", 0)
Traceback (most recent call last):
...
ValueError: `epochs` should be an integer >= 1. Received: epochs=0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np


def invalid(name: str, rule: str, value: Any, hint: str = "") -> ValueError:
    """The ValueError of a check: ``"`name` should be <rule>. Received: name=<value!r>"``."""
    message = f"`{name}` should be {rule}. Received: {name}={value!r}"
    return ValueError(f"{message}{'. ' + hint if hint else ''}")


def is_integer(value: Any) -> bool:
    """Python or NumPy integer, not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def check_bool(name: str, value: Any) -> bool:
    """``bool(value)`` when it is a Python or NumPy bool (not 0/1, not a string)."""
    if not isinstance(value, bool | np.bool_):
        raise invalid(name, "True or False", value)
    return bool(value)


def check_int(
    name: str, value: Any, minimum: int = 1, *, allow_none: bool = False, hint: str = ""
) -> int | None:
    """``int(value)`` when it is an integer >= ``minimum`` (or None when allowed)."""
    if value is None and allow_none:
        return None
    if not is_integer(value) or value < minimum:
        rule = f"an integer >= {minimum}{' or None' if allow_none else ''}"
        raise invalid(name, rule, value, hint)
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    strict: bool = False,
    allow_none: bool = False,
    hint: str = "",
) -> float | None:
    """``float(value)`` when it is a finite number (``> minimum`` when ``strict``, else ``>=``)."""
    if value is None and allow_none:
        return None
    rule = "a finite float"
    if minimum is not None:
        rule = f"a float {'>' if strict else '>='} {minimum:g}"
    if allow_none:
        rule += " or None"
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    ok = not isinstance(value, bool | str | bytes) and math.isfinite(number)
    if ok and minimum is not None:
        ok = number > minimum if strict else number >= minimum
    if not ok:
        raise invalid(name, rule, value, hint)
    return number


def check_fraction(
    name: str, value: Any, *, low_open: bool = False, high_open: bool = False
) -> float:
    """``float(value)`` inside ``[0, 1]`` (ends open as asked)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    ok = (
        not isinstance(value, bool | str | bytes)
        and (x > 0 if low_open else x >= 0)
        and (x < 1 if high_open else x <= 1)
    )
    if not ok:
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise invalid(name, f"a number in {interval}", value)
    return x


def check_fields(
    cls: type, values: Mapping[str, Any], parameter: str | None = None
) -> dict[str, Any]:
    """``dict(values)`` when every key is a field of the dataclass ``cls`` (``from_dict``);
    ``parameter``: the argument that passed ``values``, named in the error.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f"`{parameter}`: " if parameter else ""
        raise ValueError(f"{where}Unknown {cls.__name__} keys {unknown}; allowed: {sorted(names)}")
    return dict(values)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` when it is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise invalid(name, f"one of {allowed}", value)
    return value


def check_subset(name: str, values: Iterable[Any], allowed: Sequence[Any]) -> tuple[Any, ...]:
    """``tuple(values)`` when it is a non-empty subset of ``allowed``."""
    values = tuple(values)
    if not values or any(v not in allowed for v in values):
        raise invalid(name, f"a non-empty subset of {list(allowed)}", list(values))
    return values


__all__ = [
    "check_choice",
    "check_fields",
    "check_float",
    "check_fraction",
    "check_int",
    "check_subset",
    "invalid",
    "is_integer",
]
