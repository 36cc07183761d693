"""``load_dataset(name, data_dir)``: find a dataset's files, read and clean them.

=============  ==============================================================
name           files looked for in ``data_dir`` (first match wins)
=============  ==============================================================
``synthetic``  none: :func:`tfcro.data.synthetic.generate` (``data_dir`` ignored)
``movielens``  ``u.data``, ``ratings.dat`` or ``ratings.csv``; optional
               ``items.tsv`` / ``users.tsv`` side features (ML-100k)
``comirec``    ``*_train.txt`` + ``*_valid.txt`` + ``*_test.txt`` (concatenated) or
               one ``*.txt``/``*.csv``; optional ``*item_cate*`` categories
``lightgcn``   ``train.txt`` + ``test.txt`` (pre-split), or one of ``train.txt``,
               ``test.txt``, ``data.txt`` alone (e.g. Amazon-Book's ``test.txt``)
``pairs``      ``train.tsv`` + ``test.tsv`` (pre-split)
``table``      ``data_dir`` is the file itself (or ``path=`` inside ``data_dir``),
               with ``user_col``, ``item_col``, ``time_col``, ``sep`` options
=============  ==============================================================

After reading, :func:`tfcro.data.preprocess.clean` sorts by time, drops
duplicates (logged) and applies the optional ``k_core``.
"""

from __future__ import annotations

import glob
import inspect
import logging
import os
from collections.abc import Callable

from tfcro.data import preprocess, readers, synthetic
from tfcro.data.readers import PathLike
from tfcro.data.types import Interactions

logger = logging.getLogger("tfcro.data")

__all__ = ["DATASETS", "load_dataset"]


def _not_a_dataset(kind: str, data_dir: str, expected: str) -> ValueError:
    if not os.path.isdir(data_dir):
        return ValueError(
            f"{data_dir} is not a directory; expected a {kind} dataset directory "
            f"containing {expected}."
        )
    found = sorted(os.listdir(data_dir))
    shown = ", ".join(found[:20]) + (" ..." if len(found) > 20 else "") or "nothing"
    return ValueError(f"{data_dir} is not a {kind} dataset: expected {expected}; found {shown}.")


def _first(data_dir: str, names: tuple[str, ...]) -> str | None:
    for name in names:
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    return None


def _movielens(data_dir: str, min_rating: float | None = None, features: bool = True):
    names = ("u.data", "ratings.dat", "ratings.csv")
    path = _first(data_dir, names)
    if path is None:
        raise _not_a_dataset("MovieLens", data_dir, "one of " + ", ".join(names))
    data = readers.read_movielens(path, min_rating=min_rating)
    if features:
        item_features, user_features = readers.read_movielens_features(data_dir)
        data.item_features, data.user_features = item_features, user_features
    return data


def _comirec(data_dir: str):
    expected = (
        "ComiRec files '<name>_train.txt', '<name>_valid.txt', '<name>_test.txt' "
        "or one '<name>.txt' of 'user,item,time' rows (+ '<name>_item_cate.txt')"
    )
    if not os.path.isdir(data_dir):
        raise _not_a_dataset("ComiRec", data_dir, expected)
    cate = sorted(glob.glob(os.path.join(data_dir, "*item_cate*")))
    split = [
        p
        for suffix in ("train", "valid", "test")
        for p in sorted(glob.glob(os.path.join(data_dir, f"*_{suffix}.txt")))
    ]
    if not split:
        split = [
            p
            for p in sorted(
                glob.glob(os.path.join(data_dir, "*.txt"))
                + glob.glob(os.path.join(data_dir, "*.csv"))
            )
            if p not in cate
        ]
        if len(split) != 1:
            raise _not_a_dataset("ComiRec", data_dir, expected)
    return readers.read_comirec(split, category_path=cate[0] if cate else None)


def _lightgcn(data_dir: str):
    train, test = (_first(data_dir, (n,)) for n in ("train.txt", "test.txt"))
    if train and test:
        return readers.read_lightgcn(train, test)
    single = train or test or _first(data_dir, ("data.txt",))
    if single is None:
        raise _not_a_dataset(
            "LightGCN",
            data_dir,
            "'train.txt' and 'test.txt', or one of them alone, of 'user item item ...' lines",
        )
    return readers.read_lightgcn(single)


def _pairs(data_dir: str):
    train, test = (_first(data_dir, (n,)) for n in ("train.tsv", "test.tsv"))
    if not (train and test):
        raise _not_a_dataset("pairs", data_dir, "'train.tsv' and 'test.tsv' of 'user<TAB>item'")
    return readers.read_pairs(train, test)


def _table(
    data_dir: str,
    user_col: str = "user",
    item_col: str = "item",
    time_col: str | None = None,
    sep: str | None = None,
    path: str | None = None,
):
    file = os.path.join(data_dir, path) if path else data_dir
    return readers.read_table(file, user_col, item_col, time_col=time_col, sep=sep)


DATASETS: dict[str, Callable[..., Interactions]] = {
    "synthetic": lambda data_dir=None, **kw: synthetic.generate(**kw),
    "movielens": _movielens,
    "comirec": _comirec,
    "lightgcn": _lightgcn,
    "pairs": _pairs,
    "table": _table,
}
"""The dataset kinds, in dispatch order (name -> loader)."""

_LOADER_OPTIONS = {
    "synthetic": inspect.signature(synthetic.generate).parameters,
    "movielens": ("min_rating", "features"),
    "comirec": (),
    "lightgcn": (),
    "pairs": (),
    "table": ("user_col", "item_col", "time_col", "sep", "path"),
}


def load_dataset(
    name: str,
    data_dir: PathLike | None = None,
    *,
    k_core: int | None = None,
    dedupe: bool = True,
    **options,
) -> Interactions:
    """Loads a dataset by kind from ``data_dir`` and cleans it.

    Args:
        name: one of ``synthetic``, ``movielens``, ``comirec``, ``lightgcn``,
            ``pairs``, ``table`` (see the module table for the files each needs).
        data_dir: the dataset directory (for ``table`` the file itself); ignored
            for ``synthetic``.
        k_core: optional k-core filter (users and items with ``>= k_core`` rows).
        dedupe: drop duplicate ``(user, item)`` rows, keeping the earliest.
        **options: passed to the loader: ``synthetic``: the arguments of
            :func:`tfcro.data.synthetic.generate`; ``movielens``: ``min_rating``,
            ``features`` (read ``items.tsv``/``users.tsv``, default True);
            ``table``: ``user_col``, ``item_col``, ``time_col``, ``sep``, ``path``.

    Raises:
        ValueError: for an unknown name or option, a directory that is not such
            a dataset (the message lists the files expected), or malformed files
            (:class:`tfcro.data.readers.DataFormatError`, naming file and line).

    Example:
        >>> data = load_dataset("synthetic", num_users=100, num_items=50)
        >>> data.name
        'synthetic'
        >>> data = load_dataset("movielens", "ml-100k", min_rating=4)  # doctest: +SKIP
    """
    if name not in DATASETS:
        raise ValueError(f"`name` should be one of {list(DATASETS)}. Received: `name`={name!r}")
    unknown = sorted(set(options) - set(_LOADER_OPTIONS[name]))
    if unknown:
        raise ValueError(
            f"Unknown options {unknown} for dataset {name!r}; allowed: "
            f"{list(_LOADER_OPTIONS[name]) + ['k_core', 'dedupe']}"
        )
    if name != "synthetic":
        if data_dir is None:
            raise ValueError(f"`data_dir` is required for dataset {name!r}. Received: None")
        data_dir = os.fspath(data_dir)
    data = DATASETS[name](data_dir, **options)
    data = preprocess.clean(data, dedupe=dedupe, k=k_core)
    logger.info("load_dataset(%r, %r): %s", name, data_dir, data.summary())
    return data
