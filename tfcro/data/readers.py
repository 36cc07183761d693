"""Readers: dataset files -> validated :class:`~tfcro.data.types.Interactions`.

Each reader parses a file with pandas (C engine, every field read as text),
validates it column by column with vectorised checks, and returns interactions
in **file order**, ids converted to ``str`` (numeric ids canonicalised, so
``"007"`` and ``"7"`` are the same id). Cleaning -- deduplication, k-core and
time ordering -- is a separate step (:func:`tfcro.data.preprocess.clean`) that
:func:`tfcro.data.load_dataset` applies.

Bad input raises :class:`DataFormatError` (a ``ValueError``) naming the file,
the 1-based line and what was expected::

    DataFormatError: /data/u.data, line 17: field 'time' must be a number
    (unix timestamp); found 'yesterday'. Expected lines like
    'user<TAB>item<TAB>rating<TAB>timestamp'.

Formats:

==========================  =====================================================
:func:`read_movielens`      ``u.data`` (tab), ``ratings.dat`` (``::``),
                            ``ratings.csv`` (header ``userId,movieId,rating,timestamp``)
:func:`read_movielens_features`  ML-100k ``items.tsv`` / ``users.tsv``
:func:`read_comirec`        ComiRec ``user,item,time`` rows (+ ``item,category``)
:func:`read_lightgcn`       ``user item item ...`` lines (file order = time order)
:func:`read_pairs`          ``user item`` TSV pairs, optional header line
:func:`read_table`          any CSV/TSV/Parquet table with named columns
==========================  =====================================================
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfcro.data.types import Interactions

logger = logging.getLogger("tfcro.data")

PathLike = str | os.PathLike

__all__ = [
    "DataFormatError",
    "read_movielens",
    "read_movielens_features",
    "read_comirec",
    "read_comirec_categories",
    "read_lightgcn",
    "read_pairs",
    "read_table",
]


class DataFormatError(ValueError):
    """A dataset file is missing, empty or malformed.

    Attributes:
        path: the file.
        line: the 1-based line number (``None`` when the error is about the whole
            file; for Parquet, the 1-based row).
    """

    def __init__(self, path: PathLike, message: str, line: int | None = None):
        self.path = os.fspath(path)
        self.line = line
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


# --------------------------------------------------------------------------- helpers


def _check_file(path: PathLike, expected: str) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "is a directory, not a file" if os.path.isdir(path) else "does not exist"
        raise DataFormatError(path, f"file {what}. Expected {expected}.")
    if os.path.getsize(path) == 0:
        raise DataFormatError(path, f"file is empty. Expected {expected}.")
    return path


def _read_text_table(
    path: str,
    *,
    sep: str,
    names: Sequence[str] | None,
    header: bool,
    expected: str,
    text: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Reads a delimited file as text columns; returns (frame, 1-based line numbers).

    Blank lines are skipped but counted, so line numbers match the file.
    """
    source = io.StringIO(text) if text is not None else path
    try:
        frame = pd.read_csv(
            source,
            sep=sep,
            header=0 if header else None,
            names=list(names) if names is not None else None,
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, f"file has no data. Expected {expected}.") from None
    except UnicodeDecodeError as err:  # a binary file (e.g. a pickle) is not text
        raise DataFormatError(
            path,
            f"not UTF-8 text (a binary file?): {err.reason} at byte {err.start}. "
            f"Expected {expected}.",
        ) from None
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if found:
            want, line, saw = (int(g) for g in found.groups())
            raise DataFormatError(
                path, f"expected {want} fields, found {saw}. Expected {expected}.", line
            ) from None
        raise DataFormatError(path, f"cannot parse ({err}). Expected {expected}.") from None
    lines = np.arange(len(frame)) + (2 if header else 1)
    blank = (frame == "").all(axis=1).to_numpy() if len(frame.columns) else np.zeros(0, bool)
    if blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    if frame.empty:
        raise DataFormatError(path, f"file has no data rows. Expected {expected}.")
    return frame, lines


def _fail_at(path: str, lines: np.ndarray, bad: np.ndarray, message: str, values) -> None:
    """Raises for the first row flagged in ``bad`` (a boolean mask)."""
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = values.iloc[row] if isinstance(values, pd.Series) else values[row]
        raise DataFormatError(path, f"{message}; found {value!r}.", int(lines[row]))


def _require_fields(
    path: str, frame: pd.DataFrame, lines: np.ndarray, columns: Sequence[str], expected: str
) -> None:
    for column in columns:
        values = frame[column]
        missing = (values == "").to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            found = int((frame.iloc[row] != "").sum())
            raise DataFormatError(
                path,
                f"field {column!r} is missing or empty ({found} non-empty fields on the "
                f"line). Expected {expected}.",
                int(lines[row]),
            )


_INT_ID = r"\s*\+?\d+\s*"


def _numeric_ids(path: str, values: pd.Series, lines: np.ndarray, field: str) -> pd.Series:
    """Validates non-negative integer ids; returns canonical strings ("007" -> "7")."""
    ok = values.str.fullmatch(_INT_ID).to_numpy(dtype=bool)
    _fail_at(path, lines, ~ok, f"field {field!r} must be a non-negative integer id", values)
    canonical = values.str.strip().str.lstrip("+").str.lstrip("0")
    return canonical.mask(canonical == "", "0").astype(str)


def _numbers(path: str, values: pd.Series, lines: np.ndarray, field: str, what: str):
    numbers = pd.to_numeric(values.str.strip(), errors="coerce").astype("float64")
    bad = ~np.isfinite(numbers.to_numpy())
    _fail_at(path, lines, bad, f"field {field!r} must be {what}", values)
    return numbers


def _string_ids(path: str, values: pd.Series, lines: np.ndarray, field: str) -> pd.Series:
    values = values.astype(str).str.strip()
    _fail_at(path, lines, (values == "").to_numpy(), f"field {field!r} must not be empty", values)
    return values


def _frame(user: pd.Series, item: pd.Series, time: pd.Series | None = None) -> pd.DataFrame:
    columns = {"user": user.to_numpy(dtype=object), "item": item.to_numpy(dtype=object)}
    if time is not None:
        columns["time"] = time.to_numpy(dtype="float64")
    frame = pd.DataFrame(columns)
    frame["user"] = frame["user"].astype(str)
    frame["item"] = frame["item"].astype(str)
    return frame


def _has_header(path: str, first_field_is_id: bool = True) -> bool:
    """Whether the first non-blank line is a header (its first field is not an integer)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                first = re.split(r"[\t, ;]+", line.strip(), maxsplit=1)[0]
                return first_field_is_id and re.fullmatch(r"[+-]?\d+(\.\d*)?", first) is None
    return False


# --------------------------------------------------------------------------- MovieLens

_ML_FORMATS = {
    # suffix -> (separator, header, expected text)
    ".data": ("\t", False, "tab-separated lines 'user<TAB>item<TAB>rating<TAB>timestamp'"),
    ".dat": ("::", False, "lines 'user::item::rating::timestamp'"),
    ".csv": (",", True, "a CSV with header 'userId,movieId,rating,timestamp'"),
}


def read_movielens(path: PathLike, min_rating: float | None = None) -> Interactions:
    """Reads MovieLens ratings: ``u.data``, ``ratings.dat`` or ``ratings.csv``.

    The format follows the file name: ``*.dat`` is ``::``-separated (ML-1M/10M),
    ``*.csv`` has the header ``userId,movieId,rating,timestamp`` (ML-20M/25M,
    ml-latest), anything else is tab-separated without header (ML-100K ``u.data``).

    Args:
        path: the ratings file.
        min_rating: keep only ratings ``>= min_rating`` (implicit feedback from
            explicit ratings, e.g. 4); ``None`` keeps all.

    Returns:
        Interactions with ``user``, ``item``, ``time`` (the unix timestamp), file order.

    Example:
        >>> data = read_movielens("ml-100k/u.data", min_rating=4)  # doctest: +SKIP
        >>> data.frame.columns.tolist()  # doctest: +SKIP
        ['user', 'item', 'time']
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    sep, header, expected = _ML_FORMATS.get(suffix, _ML_FORMATS[".data"])
    _check_file(path, expected)
    text = None
    if sep == "::":  # multi-character separators need pandas' slow Python engine
        with open(path, encoding="latin-1") as handle:
            text = handle.read().replace("::", "\t")
        sep = "\t"
    frame, lines = _read_text_table(
        path,
        sep=sep,
        names=None if header else ["user", "item", "rating", "time"],
        header=header,
        expected=expected,
        text=text,
    )
    if header:
        wanted = ["userId", "movieId", "rating", "timestamp"]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise DataFormatError(
                path,
                f"missing columns {missing}; found {list(frame.columns)}. Expected {expected}.",
                1,
            )
        frame = frame[wanted].set_axis(["user", "item", "rating", "time"], axis=1)
    _require_fields(path, frame, lines, ["user", "item", "rating", "time"], expected)
    user = _numeric_ids(path, frame["user"], lines, "user")
    item = _numeric_ids(path, frame["item"], lines, "item")
    rating = _numbers(path, frame["rating"], lines, "rating", "a number")
    time = _numbers(path, frame["time"], lines, "time", "a number (unix timestamp)")
    out = _frame(user, item, time)
    if min_rating is not None:
        keep = (rating >= float(min_rating)).to_numpy()
        logger.info(
            "%s: min_rating=%s keeps %d of %d ratings", path, min_rating, keep.sum(), len(keep)
        )
        out = out.loc[keep].reset_index(drop=True)
    name = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return Interactions(out, name=name)


def _age_bucket(age: pd.Series) -> pd.Series:
    edges = [-np.inf, 18, 25, 35, 45, 50, 56, np.inf]  # the ML-1M age groups
    labels = ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]
    return pd.cut(age, bins=edges, labels=labels, right=False).astype(str)


def _read_id_table(path: str, key: str, expected: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A MovieLens side-feature TSV with header: ``(raw frame, frame with the '<key>' ids)``."""
    frame, lines = _read_text_table(
        _check_file(path, expected), sep="\t", names=None, header=True, expected=expected
    )
    _require_columns(path, frame, [f"{key}_id"], expected)
    ids = _numeric_ids(path, frame[f"{key}_id"], lines, f"{key}_id")
    return frame, pd.DataFrame({key: ids})


def read_movielens_features(
    data_dir: PathLike,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Optional ML-100k side features from ``items.tsv`` and ``users.tsv`` (with headers).

    Item features: ``genre`` (the first genre listed) and ``release_year``.
    User features: ``gender``, ``occupation`` and ``age`` (the ML-1M age buckets
    ``<18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+``). Missing values are ``""``.
    A file that is absent gives ``None``.

    Returns:
        ``(item_features, user_features)`` keyed by ``item`` / ``user`` (str).
    """
    data_dir = os.fspath(data_dir)
    items_path, users_path = (os.path.join(data_dir, f) for f in ("items.tsv", "users.tsv"))
    items = users = None
    if os.path.isfile(items_path):
        frame, items = _read_id_table(
            items_path, "item", "a TSV with header 'item_id title release_year genres'"
        )
        if "genres" in frame:
            items["genre"] = frame["genres"].str.split().str[0].fillna("").astype(str)
        if "release_year" in frame:
            year = pd.to_numeric(frame["release_year"], errors="coerce")
            items["release_year"] = (
                year.astype("Int64").astype(str).fillna("").replace("<NA>", "").astype(str)
            )
        items = items.drop_duplicates("item").reset_index(drop=True)
    if os.path.isfile(users_path):
        frame, users = _read_id_table(
            users_path, "user", "a TSV with header 'user_id age gender occupation zip_code'"
        )
        for column in ("gender", "occupation"):
            if column in frame:
                users[column] = frame[column].str.strip().astype(str)
        if "age" in frame:
            age = pd.to_numeric(frame["age"], errors="coerce")
            users["age"] = _age_bucket(age).where(age.notna(), "").fillna("").astype(str)
        users = users.drop_duplicates("user").reset_index(drop=True)
    return items, users


def _require_columns(path: str, frame: pd.DataFrame, columns: Sequence[str], expected: str):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(
            path, f"missing columns {missing}; found {list(frame.columns)}. Expected {expected}.", 1
        )


# --------------------------------------------------------------------------- ComiRec


def read_comirec(path: PathLike | Sequence[PathLike], category_path: PathLike | None = None):
    """Reads ComiRec files (Amazon Books / Taobao of the CROLoss paper).

    Each line is ``user,item,time`` (comma-separated, no header; ``time`` a number).
    Several files (ComiRec's user-disjoint ``*_train.txt``, ``*_valid.txt``,
    ``*_test.txt``) are concatenated in the order given. ``category_path`` is an
    ``item,category`` file giving the item feature ``category``.

    Example:
        >>> data = read_comirec(["book_train.txt", "book_test.txt"],
        ...                     category_path="book_item_cate.txt")  # doctest: +SKIP
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        raise ValueError("`path` must name at least one ComiRec file. Received: `path`=[]")
    expected = "comma-separated lines 'user,item,time' (no header)"
    frames = []
    for one in paths:
        one = _check_file(one, expected)
        frame, lines = _read_text_table(
            one, sep=",", names=["user", "item", "time"], header=False, expected=expected
        )
        _require_fields(one, frame, lines, ["user", "item", "time"], expected)
        frames.append(
            _frame(
                _numeric_ids(one, frame["user"], lines, "user"),
                _numeric_ids(one, frame["item"], lines, "item"),
                _numbers(one, frame["time"], lines, "time", "a number (timestamp)"),
            )
        )
    out = pd.concat(frames, ignore_index=True)
    categories = read_comirec_categories(category_path) if category_path is not None else None
    name = os.path.basename(os.fspath(paths[0])).split("_")[0]
    return Interactions(out, item_features=categories, name=name)


def read_comirec_categories(path: PathLike) -> pd.DataFrame:
    """Reads an ``item,category`` file into an item-feature table (``item``, ``category``)."""
    expected = "comma-separated lines 'item,category' (no header)"
    path = _check_file(path, expected)
    frame, lines = _read_text_table(
        path, sep=",", names=["item", "category"], header=False, expected=expected
    )
    _require_fields(path, frame, lines, ["item", "category"], expected)
    out = pd.DataFrame(
        {
            "item": _numeric_ids(path, frame["item"], lines, "item").to_numpy(dtype=object),
            "category": frame["category"].str.strip().to_numpy(dtype=object),
        }
    ).astype(str)
    return out.drop_duplicates("item").reset_index(drop=True)


# --------------------------------------------------------------------------- LightGCN


def _read_lightgcn_file(path: PathLike) -> pd.DataFrame:
    expected = "space-separated lines 'user item item ...' (non-negative integer ids)"
    path = _check_file(path, expected)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    lines = pd.Series(text.splitlines(), dtype=str)
    tokens = lines.str.split()
    counts = tokens.str.len().to_numpy()
    nonblank = counts > 0
    if not nonblank.any():
        raise DataFormatError(path, f"file has no data rows. Expected {expected}.")
    tokens = tokens[nonblank]
    flat = tokens.explode()
    line_of_token = flat.index.to_numpy() + 1
    ok = flat.str.fullmatch(r"\+?\d+").to_numpy(dtype=bool)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(
            path,
            f"ids must be non-negative integers; found {flat.iloc[row]!r}. Expected {expected}.",
            int(line_of_token[row]),
        )
    ids = flat.str.lstrip("+").str.lstrip("0")
    ids = ids.mask(ids == "", "0").astype(str)
    first = np.r_[True, line_of_token[1:] != line_of_token[:-1]]
    users = ids[first]
    user_of_token = pd.Series(users.to_numpy(), index=users.index).reindex(ids.index)
    return _frame(user_of_token[~first], ids[~first])


def read_lightgcn(path: PathLike, test_path: PathLike | None = None) -> Interactions:
    """Reads LightGCN-style files: one line per user, ``user item item ...``.

    There are no timestamps: the order of the items on a line is kept as the
    time order (rows come out in file order and carry no ``time`` column). A user
    line without items is allowed (the user simply has no interactions).

    Args:
        path: ``train.txt``, or a single file used alone (e.g. Amazon-Book's
            ``test.txt`` treated as each user's behaviour sequence).
        test_path: optional ``test.txt``; then the result is pre-split (column
            ``split`` = ``"train"``/``"test"``, see ``Interactions.train_test``).

    Example:
        >>> data = read_lightgcn("amazon-book/test.txt")  # doctest: +SKIP
        >>> train, test = read_lightgcn("train.txt", "test.txt").train_test()  # doctest: +SKIP
    """
    frame = _read_lightgcn_file(path)
    if test_path is not None:
        frame = _with_split(frame, _read_lightgcn_file(test_path))
    name = os.path.basename(os.path.dirname(os.path.abspath(os.fspath(path))))
    return Interactions(frame, name=name)


# --------------------------------------------------------------------------- pairs


def _with_split(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Train and test rows in one frame with a ``split`` column (``"train"``/``"test"``)."""
    frame = pd.concat([train.assign(split="train"), test.assign(split="test")], ignore_index=True)
    frame["split"] = frame["split"].astype(str)
    return frame


def _read_pairs_file(path: PathLike) -> pd.DataFrame:
    expected = "tab-separated lines 'user<TAB>item' (optionally a header line first)"
    path = _check_file(path, expected)
    header = _has_header(path)
    frame, lines = _read_text_table(path, sep="\t", names=None, header=header, expected=expected)
    if frame.shape[1] != 2:
        raise DataFormatError(
            path,
            f"expected 2 tab-separated fields, found {frame.shape[1]}. Expected {expected}.",
            int(lines[0]) - (1 if header else 0),
        )
    frame = frame.set_axis(["user", "item"], axis=1)
    _require_fields(path, frame, lines, ["user", "item"], expected)
    return _frame(
        _numeric_ids(path, frame["user"], lines, "user"),
        _numeric_ids(path, frame["item"], lines, "item"),
    )


def read_pairs(train_path: PathLike, test_path: PathLike | None = None) -> Interactions:
    """Reads ``user<TAB>item`` pair files (e.g. ``train.tsv`` / ``test.tsv``).

    A first line whose first field is not an integer (like ``user_procid
    item_procid``) is taken as a header. No timestamps: file order is kept.
    With ``test_path`` the result is pre-split (column ``split``).

    Example:
        >>> train, test = read_pairs("ml-1m/train.tsv", "ml-1m/test.tsv").train_test()
        ... # doctest: +SKIP
    """
    frame = _read_pairs_file(train_path)
    if test_path is not None:
        frame = _with_split(frame, _read_pairs_file(test_path))
    name = os.path.basename(os.path.dirname(os.path.abspath(os.fspath(train_path))))
    return Interactions(frame, name=name)


# --------------------------------------------------------------------------- tables

_SEPARATORS = {".tsv": "\t", ".tab": "\t", ".csv": ","}


def read_table(
    path: PathLike,
    user_col: str,
    item_col: str,
    time_col: str | None = None,
    sep: str | None = None,
) -> Interactions:
    """Reads any table with a header: CSV, TSV or Parquet, with named columns.

    Ids are kept as given (any non-empty string, stripped). ``time_col`` must be
    numeric, or a date/time string that pandas can parse (then converted to unix
    seconds).

    Args:
        path: ``*.parquet`` / ``*.pq`` read with pyarrow; otherwise a delimited file.
        user_col: the user id column.
        item_col: the item id column.
        time_col: optional timestamp column.
        sep: the separator; ``None`` picks it from the suffix (``.tsv`` tab, ``.csv``
            comma) or, otherwise, sniffs the header line (tab, comma, ``;``, ``|``).

    Example:
        >>> data = read_table("clicks.parquet", "visitor", "product", "ts")  # doctest: +SKIP
    """
    path = os.fspath(path)
    wanted = [user_col, item_col] + ([time_col] if time_col else [])
    expected = f"a table with columns {wanted}"
    _check_file(path, expected)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".parquet", ".pq"):
        try:
            raw = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types for non-Parquet input
            raise DataFormatError(
                path, f"cannot read Parquet ({err}). Expected {expected}."
            ) from None
        _require_columns(path, raw, wanted, expected)
        raw = raw[wanted]
        lines = np.arange(len(raw)) + 1  # 1-based rows, for Parquet
        nulls = raw.isna().to_numpy()
        if nulls.any():
            row, col = (int(i[0]) for i in np.nonzero(nulls))
            raise DataFormatError(
                path, f"null value in column {wanted[col]!r}. Expected {expected}.", row + 1
            )
        frame = raw.astype({c: str for c in (user_col, item_col)})
        if time_col and not pd.api.types.is_numeric_dtype(raw[time_col]):
            frame[time_col] = raw[time_col].astype(str)
    else:
        if sep is None:
            sep = _SEPARATORS.get(suffix) or _sniff(path)
        frame, lines = _read_text_table(path, sep=sep, names=None, header=True, expected=expected)
        _require_columns(path, frame, wanted, expected)
        _require_fields(path, frame, lines, wanted, expected)
    user = _string_ids(path, frame[user_col], lines, user_col)
    item = _string_ids(path, frame[item_col], lines, item_col)
    time = None
    if time_col:
        values = frame[time_col]
        if pd.api.types.is_numeric_dtype(values):
            time = values.astype("float64")
            _fail_at(
                path, lines, ~np.isfinite(time.to_numpy()), f"{time_col!r} must be finite", values
            )
        else:
            time = _times(path, values.astype(str), lines, time_col)
    name = os.path.splitext(os.path.basename(path))[0]
    return Interactions(_frame(user, item, time), name=name)


def _times(path: str, values: pd.Series, lines: np.ndarray, field: str) -> pd.Series:
    numbers = pd.to_numeric(values.str.strip(), errors="coerce").astype("float64")
    finite = np.isfinite(numbers.to_numpy())
    if finite.all():
        return numbers
    if finite[0]:  # a numeric column: point at the bad number, not at the first row
        _fail_at(path, lines, ~finite, f"field {field!r} must be a finite number", values)
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna().to_numpy()
    _fail_at(path, lines, bad, f"field {field!r} must be a number or a date/time", values)
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return seconds.astype("float64")


def _sniff(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    counts = {s: first.count(s) for s in ("\t", ",", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","
