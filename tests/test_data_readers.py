"""Readers and load_dataset on tiny fixture files (tests/data) and malformed tmp files."""

from __future__ import annotations

import logging
import os

import pandas as pd
import pytest

import tfcro  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)
from tfcro.data import DataFormatError, load_dataset, readers

DATA = os.path.join(os.path.dirname(__file__), "data")


def fixture(name: str) -> str:
    return os.path.join(DATA, name)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name", ["u.data", "ratings.dat", "ratings.csv"])
def test_movielens_formats(name):
    data = readers.read_movielens(fixture(name))
    frame = data.frame
    assert frame.columns.tolist() == ["user", "item", "time"]
    assert frame["user"].tolist()[:3] == ["1", "1", "2"]  # file order, ids as str
    assert frame["item"].tolist()[:3] == ["10", "11", "10"]
    assert frame["time"].tolist()[:3] == [100.0, 90.0, 95.0]
    assert all(isinstance(v, str) for v in frame["item"])


def test_movielens_min_rating():
    data = readers.read_movielens(fixture("u.data"), min_rating=4)
    # ratings 5, 4, 5, 4 are >= 4 (rows 1, 3, 5, 6 of the file)
    assert data.frame["time"].tolist() == [100.0, 95.0, 80.0, 130.0]


def test_movielens_features():
    items, users = readers.read_movielens_features(DATA)
    assert items.set_index("item").loc["10"].tolist() == ["Animation", "1995"]
    assert items.set_index("item").loc["11", "release_year"] == ""  # missing year
    assert users.set_index("user").loc["2"].tolist() == ["F", "other", "50-55"]
    assert users.set_index("user").loc["1", "age"] == "18-24"


def test_comirec_with_categories():
    data = readers.read_comirec(fixture("book_train.txt"), fixture("book_item_cate.txt"))
    assert data.frame.values.tolist() == [["1", "10", 3.0], ["1", "11", 1.0], ["2", "10", 2.0]]
    assert data.item_features.values.tolist() == [["10", "7"], ["11", "8"]]
    assert data.name == "book"


def test_lightgcn_keeps_file_order_without_time():
    data = readers.read_lightgcn(fixture("lightgcn.txt"))
    assert not data.has_time
    assert data.frame.values.tolist() == [
        ["0", "1"],
        ["0", "2"],
        ["0", "3"],
        ["1", "2"],
        ["1", "4"],
        ["2", "5"],
    ]


def test_lightgcn_train_test(tmp_path):
    train = write(tmp_path, "train.txt", "0 1 2\n1 3\n")
    test = write(tmp_path, "test.txt", "0 3\n\n1 1\n")
    part_train, part_test = readers.read_lightgcn(train, test).train_test()
    assert part_train.frame.values.tolist() == [["0", "1"], ["0", "2"], ["1", "3"]]
    assert part_test.frame.values.tolist() == [["0", "3"], ["1", "1"]]


def test_pairs_with_and_without_header():
    both = readers.read_pairs(fixture("pairs_train.tsv"), fixture("pairs_test.tsv"))
    train, test = both.train_test()
    assert train.frame.values.tolist() == [["0", "1"], ["0", "2"], ["1", "2"], ["1", "3"]]
    assert test.frame.values.tolist() == [["0", "3"], ["1", "1"]]  # no header line


def test_numeric_ids_are_canonical(tmp_path):
    path = write(tmp_path, "x.tsv", "007\t0010\n0\t00\n")
    assert readers.read_pairs(path).frame.values.tolist() == [["7", "10"], ["0", "0"]]


def test_read_table_csv_sniffed_dates():
    data = readers.read_table(fixture("clicks.txt"), "visitor", "product", "ts")
    assert data.frame["item"].tolist() == ["p1", "p2"]
    assert data.frame["time"].tolist()[1] == pd.Timestamp("2024-01-01").timestamp()


def test_read_table_parquet(tmp_path):
    path = str(tmp_path / "t.parquet")
    pd.DataFrame({"u": [1, 2], "i": ["a", "b"], "t": [3.0, 4.0]}).to_parquet(path)
    data = readers.read_table(path, "u", "i", "t")
    assert data.frame.values.tolist() == [["1", "a", 3.0], ["2", "b", 4.0]]


def test_read_table_parquet_null(tmp_path):
    path = str(tmp_path / "t.parquet")
    pd.DataFrame({"u": ["1", None], "i": ["a", "b"]}).to_parquet(path)
    with pytest.raises(DataFormatError, match=r"t\.parquet, line 2: null value in column 'u'"):
        readers.read_table(path, "u", "i")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "text, line, pattern",
    [
        ("1\t2\t3\t4\n1\t2\t3\tyesterday\n", 2, r"'time' must be a number.*'yesterday'"),
        ("1\t2\t3\t4\n\n-1\t2\t3\t4\n", 3, r"'user' must be a non-negative integer id.*'-1'"),
        ("1\t2\t3\t4\n1\t2\t3\n", 2, r"field 'time' is missing"),
        ("1\t2\t3\t4\n1\t2\t3\t4\t5\n", 2, r"expected 4 fields, found 5"),
        ("1,2,3,4\n", 1, r"field 'item' is missing.*tab-separated"),
        ("1\tNaN\t3\t4\n", 1, r"'item' must be a non-negative integer id.*'NaN'"),
        ("1\t2\t3\tnan\n", 1, r"'time' must be a number"),
    ],
    ids=[
        "non-numeric-time",
        "negative-id",
        "short-line",
        "long-line",
        "wrong-separator",
        "nan-id",
        "nan-time",
    ],
)
def test_movielens_malformed_names_file_and_line(tmp_path, text, line, pattern):
    path = write(tmp_path, "u.data", text)
    with pytest.raises(DataFormatError, match=pattern) as info:
        readers.read_movielens(path)
    assert info.value.path == path and info.value.line == line
    assert str(info.value).startswith(f"{path}, line {line}: ")


def test_missing_and_empty_files(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match=r"nope\.txt: file does not exist\. Expected"):
        readers.read_lightgcn(missing)
    empty = write(tmp_path, "empty.txt", "")
    with pytest.raises(ValueError, match=r"empty\.txt: file is empty"):
        readers.read_lightgcn(empty)
    blank = write(tmp_path, "blank.tsv", "\n\n")
    with pytest.raises(ValueError, match=r"blank\.tsv: file has no data"):
        readers.read_pairs(blank)


@pytest.mark.parametrize(
    "reader, name, text, pattern",
    [
        (
            "read_lightgcn",
            "train.txt",
            "0 1 2\n1 3 x7\n",
            r"train\.txt, line 2: ids must be non-negative.*'x7'",
        ),
        (
            "read_comirec",
            "b.txt",
            "1,2,3\n1,2,3\n1,2,\n",
            r"b\.txt, line 3: field 'time' is missing",
        ),
        (
            "read_pairs",
            "train.tsv",
            "0\t1\t5\n",
            r"line 1: expected 2 tab-separated fields, found 3",
        ),
        (
            "read_movielens",
            "ratings.csv",
            "userId,itemId,rating,timestamp\n1,2,3,4\n",
            r"line 1: missing columns \['movieId'\]",
        ),
    ],
    ids=["lightgcn-bad-token", "comirec-bad-time", "pairs-field-count", "ratings-missing-column"],
)
def test_bad_line_names_file_line_and_field(tmp_path, reader, name, text, pattern):
    path = write(tmp_path, name, text)
    with pytest.raises(DataFormatError, match=pattern):
        getattr(readers, reader)(path)


def test_read_table_missing_column_and_empty_id(tmp_path):
    path = write(tmp_path, "t.csv", "u,i\n1,a\n,b\n")
    with pytest.raises(DataFormatError, match=r"missing columns \['t'\]"):
        readers.read_table(path, "u", "i", "t")
    with pytest.raises(DataFormatError, match=r"t\.csv, line 3: field 'u' is missing"):
        readers.read_table(path, "u", "i")


# --------------------------------------------------------------------------- load_dataset


def test_load_movielens_dedup_logged_and_features(caplog):
    with caplog.at_level(logging.INFO, logger="tfcro.data"):
        data = load_dataset("movielens", DATA)
    # (1, 10) appears at t=100 and t=130: the later row is dropped
    assert "dropped 1 duplicate (user, item) rows of 6" in caplog.text
    assert len(data) == 5
    assert data.frame["time"].is_monotonic_increasing
    assert data.item_features is not None and data.user_features is not None


def test_load_dataset_dispatch(tmp_path):
    write(tmp_path, "test.txt", "0 1 2\n1 2\n")
    assert len(load_dataset("lightgcn", tmp_path)) == 3
    pairs = load_dataset("pairs", _pair_dir(tmp_path))
    assert pairs.has_split
    table = load_dataset(
        "table", fixture("clicks.txt"), user_col="visitor", item_col="product", time_col="ts"
    )
    assert table.frame["item"].tolist() == ["p2", "p1"]  # sorted by time
    assert load_dataset("synthetic", num_users=20, num_items=30).name == "synthetic"


def _pair_dir(tmp_path):
    directory = tmp_path / "pairs"
    directory.mkdir()
    (directory / "train.tsv").write_text("0\t1\n")
    (directory / "test.tsv").write_text("0\t2\n")
    return directory


def test_load_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match=r"`name` should be one of \['synthetic', 'movielens'"):
        load_dataset("netflix", tmp_path)
    write(tmp_path, "readme.md", "hi")
    with pytest.raises(
        ValueError,
        match=r"not a MovieLens dataset: expected one of u\.data, "
        r"ratings\.dat, ratings\.csv; found readme\.md",
    ):
        load_dataset("movielens", tmp_path)
    with pytest.raises(ValueError, match=r"not a pairs dataset: expected 'train\.tsv'"):
        load_dataset("pairs", tmp_path)
    with pytest.raises(ValueError, match=r"Unknown options \['min_ratin'\]"):
        load_dataset("movielens", tmp_path, min_ratin=4)


def test_load_comirec_directory(tmp_path):
    (tmp_path / "book_train.txt").write_text("1,10,3\n1,11,1\n")
    (tmp_path / "book_test.txt").write_text("2,10,2\n2,12,1\n")
    (tmp_path / "book_item_cate.txt").write_text("10,7\n11,8\n")
    data = load_dataset("comirec", tmp_path)
    assert data.frame.values.tolist() == [
        ["1", "11", 1.0],
        ["2", "12", 1.0],
        ["2", "10", 2.0],
        ["1", "10", 3.0],
    ]
    assert data.item_features["category"].tolist() == ["7", "8"]
    with pytest.raises(ValueError, match="missing is not a directory; expected a ComiRec dataset"):
        load_dataset("comirec", tmp_path / "missing")
