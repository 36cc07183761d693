"""Cleaning of :class:`~tfcro.data.types.Interactions`: time order, dedup, k-core.

:func:`clean` runs the three steps in this order and logs (logger ``"tfcro.data"``)
what each one dropped:

0. :func:`ids_to_strings` -- ``user`` / ``item`` as ``str`` (``str(raw)``), ``time``
   as float64 (a no-op for readers' output, which already is).
1. :func:`sort_by_time` -- a **stable** sort on ``time`` (ties keep file order);
   without a ``time`` column the file order is the time order and nothing moves.
2. :func:`deduplicate` -- one row per ``(user, item)`` (per ``split`` for
   pre-split data), keeping the **first** by time.
3. :func:`k_core` -- optional: iteratively drop users and items with fewer than
   ``k`` interactions until every remaining one has at least ``k``.

All steps are vectorised pandas operations.
"""

from __future__ import annotations

import logging

import pandas as pd

from tfcro.data.types import Interactions
from tfcro.validation import check_int

logger = logging.getLogger("tfcro.data")

__all__ = ["clean", "ids_to_strings", "sort_by_time", "deduplicate", "k_core"]


def ids_to_strings(interactions: Interactions) -> Interactions:
    """Converts ``user`` / ``item`` to ``str`` and ``time`` to float64 when they are not.

    Example:
        >>> import pandas as pd
        >>> data = Interactions(pd.DataFrame({"user": [1, 2], "item": [10, 10]}))
        >>> ids_to_strings(data).frame["user"].tolist()
        ['1', '2']
    """
    frame = interactions.frame
    wanted = {c: str for c in ("user", "item") if not pd.api.types.is_string_dtype(frame[c])}
    if interactions.has_time and frame["time"].dtype != "float64":
        wanted["time"] = "float64"
    if not wanted:
        return interactions
    try:
        frame = frame.astype(wanted)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`time` must be numeric. Received a column that is not: {err}") from None
    return interactions.replace(frame)


def sort_by_time(interactions: Interactions) -> Interactions:
    """Orders rows by ``time`` (stable: ties keep file order); no-op without ``time``."""
    if not interactions.has_time:
        return interactions
    frame = interactions.frame.sort_values("time", kind="stable").reset_index(drop=True)
    return interactions.replace(frame)


def deduplicate(interactions: Interactions) -> Interactions:
    """Drops repeated ``(user, item)`` pairs, keeping the first row (earliest if sorted).

    Pre-split data is deduplicated within each split. Logs the number of dropped
    rows at INFO level on logger ``"tfcro.data"``.

    Example:
        >>> import pandas as pd
        >>> data = Interactions(pd.DataFrame({"user": ["u", "u"], "item": ["a", "a"]}))
        >>> len(deduplicate(data))
        1
    """
    keys = ["user", "item"] + (["split"] if interactions.has_split else [])
    duplicated = interactions.frame.duplicated(keys, keep="first").to_numpy()
    dropped = int(duplicated.sum())
    logger.info(
        "deduplicate %s: dropped %d duplicate (%s) rows of %d",
        interactions.name or "interactions",
        dropped,
        ", ".join(keys),
        len(duplicated),
    )
    if not dropped:
        return interactions
    return interactions.replace(interactions.frame.loc[~duplicated].reset_index(drop=True))


def k_core(interactions: Interactions, k: int, item_k: int | None = None) -> Interactions:
    """Iterative k-core: every user and item keeps at least ``k`` interactions.

    Dropping a sparse item can push a user under ``k`` and vice versa, so the
    filter repeats until nothing changes. Counts are over all rows (all splits).

    Args:
        interactions: the interactions to filter.
        k: the minimum number of interactions per user (and per item).
        item_k: a different minimum for items (default ``k``).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"user": list("aabbc"), "item": list("xyxyx")})
        >>> k_core(Interactions(frame), 2).frame.values.tolist()  # c has one row
        [['a', 'x'], ['a', 'y'], ['b', 'x'], ['b', 'y']]
    """
    k = check_int("k", k)
    item_k = k if item_k is None else check_int("item_k", item_k)
    frame = interactions.frame
    before, rounds = len(frame), 0
    while True:
        rounds += 1
        user_count = frame.groupby("user", sort=False)["user"].transform("size")
        item_count = frame.groupby("item", sort=False)["item"].transform("size")
        keep = ((user_count >= k) & (item_count >= item_k)).to_numpy()
        if keep.all():
            break
        frame = frame.loc[keep]
    frame = frame.reset_index(drop=True)
    logger.info(
        "k_core %s (k=%d, item_k=%d): kept %d of %d rows after %d rounds",
        interactions.name or "interactions",
        k,
        item_k,
        len(frame),
        before,
        rounds,
    )
    return interactions.replace(frame)


def clean(interactions: Interactions, dedupe: bool = True, k: int | None = None) -> Interactions:
    """Sorts by time, drops duplicates and applies the optional k-core, in that order.

    Args:
        interactions: the output of a reader.
        dedupe: drop repeated ``(user, item)`` rows (keep the earliest).
        k: the k-core threshold; ``None`` or ``0`` for no filter.

    Example:
        >>> from tfcro.data import readers
        >>> data = clean(readers.read_movielens("ml-100k/u.data"), k=5)  # doctest: +SKIP
    """
    out = sort_by_time(ids_to_strings(interactions))
    if dedupe:
        out = deduplicate(out)
    if k:
        out = k_core(out, k)
    return out
