"""The data contract of ``tfcro.data`` (docs/architecture.md, "Data contract").

Every id that reaches a model is a Python ``str``; history padding is the empty
string :data:`PAD`, which the towers' lookups mask. Arrays of ids are NumPy
``object`` arrays of ``str`` (what pandas 3 gives for its ``str`` columns and what
``tf.constant`` turns into ``tf.string`` without copies of fixed-width unicode).

- :class:`Interactions`: the output of a reader, a pandas DataFrame ``frame`` with
  columns ``user`` (str), ``item`` (str), optional ``time`` (float) and, for data
  that comes already split (LightGCN ``train.txt``/``test.txt``, ``train.tsv``/
  ``test.tsv``), a ``split`` column with values ``"train"`` / ``"test"``; plus
  optional ``item_features`` / ``user_features`` DataFrames keyed by ``item`` /
  ``user`` with string columns.
- :class:`RetrievalData`: the output of a protocol (``sequential_split`` or
  ``collaborative_split``): the catalog, :class:`TrainExamples` and two
  :class:`EvalUsers` (valid, test).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tfcro.constants import PAD, PROTOCOLS  # noqa: F401  (re-exported: tfcro.data.PAD)


@dataclasses.dataclass
class Interactions:
    """User-item interactions read from one dataset.

    Attributes:
        frame: DataFrame with columns ``user`` (str), ``item`` (str), optional
            ``time`` (float64) and optional ``split`` (``"train"``/``"test"``).
            Row order is the file order until :func:`tfcro.data.preprocess.clean`
            sorts it by time (stable, so file order breaks ties; without a ``time``
            column the file order *is* the time order).
        item_features: optional DataFrame with column ``item`` and string feature
            columns (one row per item).
        user_features: optional DataFrame with column ``user`` and string feature
            columns (one row per user).
        name: a short label for logs (e.g. ``"ml-100k"``).

    Example:
        >>> import pandas as pd
        >>> data = Interactions(pd.DataFrame({"user": ["1", "1"], "item": ["a", "b"]}))
        >>> data.num_users, data.num_items, len(data), data.has_time
        (1, 2, 2, False)
    """

    frame: pd.DataFrame
    item_features: pd.DataFrame | None = None
    user_features: pd.DataFrame | None = None
    name: str = ""

    def __post_init__(self) -> None:
        missing = [c for c in ("user", "item") if c not in self.frame.columns]
        if missing:
            raise ValueError(
                f"`frame` must have columns 'user' and 'item'; missing {missing}. "
                f"Received columns: {list(self.frame.columns)}"
            )

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def has_time(self) -> bool:
        """Whether the interactions carry timestamps (column ``time``)."""
        return "time" in self.frame.columns

    @property
    def has_split(self) -> bool:
        """Whether the data comes pre-split (column ``split``: train/test)."""
        return "split" in self.frame.columns

    @property
    def num_users(self) -> int:
        return int(self.frame["user"].nunique())

    @property
    def num_items(self) -> int:
        return int(self.frame["item"].nunique())

    def replace(self, frame: pd.DataFrame) -> Interactions:
        """A copy with another ``frame`` (features and name kept)."""
        return dataclasses.replace(self, frame=frame)

    def train_test(self) -> tuple[Interactions, Interactions]:
        """Splits pre-split data (column ``split``) into its train and test parts.

        Raises:
            ValueError: if the data has no ``split`` column.
        """
        if not self.has_split:
            raise ValueError(
                f"Interactions {self.name!r} are not pre-split (no 'split' column); "
                "use `sequential_split` or pass train and test interactions explicitly."
            )
        parts = []
        for split in ("train", "test"):
            part = self.frame[self.frame["split"] == split].drop(columns="split")
            parts.append(self.replace(part.reset_index(drop=True)))
        return parts[0], parts[1]

    def summary(self) -> dict[str, int | float | str]:
        """Counts for logs: users, items, interactions, density (and per split)."""
        out: dict[str, int | float | str] = {
            "name": self.name,
            "users": self.num_users,
            "items": self.num_items,
            "interactions": len(self),
        }
        cells = max(1, out["users"] * out["items"])
        out["density"] = round(len(self) / cells, 6)
        if self.has_split:
            counts = self.frame["split"].value_counts()
            for split in ("train", "test"):
                out[f"{split}_interactions"] = int(counts.get(split, 0))
        return out


@dataclasses.dataclass
class TrainExamples:
    """Training samples: predict ``target`` from ``history`` (and ``user_id``).

    Attributes:
        user_id: ``[n]`` str.
        history: ``[n, L]`` str, time order (oldest first), padded with
            :data:`PAD` on the right.
        target: ``[n]`` str, the positive item.
        history_codes, target_codes: optional ``int32`` positions of ``history`` /
            ``target`` in the catalog (``RetrievalData.items``), ``-1`` for padding:
            the same ids as integers, made once by the split protocols so that a
            model over that catalog needs no string lookup to train.
    """

    user_id: np.ndarray
    history: np.ndarray
    target: np.ndarray
    history_codes: np.ndarray | None = dataclasses.field(default=None, repr=False)
    target_codes: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.target)

    @property
    def history_lengths(self) -> np.ndarray:
        """``[n]`` int, the number of non-padding history items."""
        return (self.history != PAD).sum(axis=1)


@dataclasses.dataclass
class EvalUsers:
    """Evaluation queries: one row per user.

    Attributes:
        user_id: ``[u]`` str.
        history: ``[u, L]`` str, padded with :data:`PAD` on the right.
        targets: ``u`` arrays of str, the items to retrieve.
        seen: ``u`` arrays of str, the items excluded from the ranking
            (collaborative protocol: the user's training items; sequential: empty).
    """

    user_id: np.ndarray
    history: np.ndarray
    targets: list[np.ndarray]
    seen: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.user_id)

    @property
    def num_targets(self) -> int:
        return int(sum(len(t) for t in self.targets))

    @classmethod
    def empty(cls, max_history: int) -> EvalUsers:
        """No users (e.g. a zero-size split)."""
        return cls(
            user_id=np.empty(0, dtype=object),
            history=np.empty((0, max_history), dtype=object),
            targets=[],
            seen=[],
        )


@dataclasses.dataclass
class RetrievalData:
    """A dataset ready for training and full-catalog evaluation.

    Attributes:
        items: ``[m]`` str, the catalog (unique item ids, sorted).
        train: the training samples.
        valid: validation users (model selection / early stopping).
        test: test users (reported metrics).
        item_features: feature name -> ``[m]`` str aligned with ``items``
            (:data:`PAD` where unknown); may be empty.
        user_features: feature name -> ``{user_id: value}``; may be empty.
        protocol: ``"sequential"`` or ``"collaborative"``.
        max_history: ``L``, the width of every history array.
        name: a label for logs.
    """

    items: np.ndarray
    train: TrainExamples
    valid: EvalUsers
    test: EvalUsers
    item_features: dict[str, np.ndarray]
    user_features: dict[str, Mapping[str, str]]
    protocol: str
    max_history: int
    name: str = ""

    def example_features(self, user_id: np.ndarray, item_id: np.ndarray | None = None):
        """Per-example feature columns for ``user_id`` (and ``item_id``) arrays.

        Returns ``{name: [n] str}`` with every user feature looked up by
        ``user_id`` and, when ``item_id`` is given, every item feature looked up by
        ``item_id``; unknown ids give :data:`PAD`. Pass it as ``features=`` to
        :func:`tfcro.data.train_dataset`.

        Example:
            >>> feats = data.example_features(data.train.user_id, data.train.target)
            ... # doctest: +SKIP
        """
        out: dict[str, np.ndarray] = {}
        users = pd.Series(np.asarray(user_id, dtype=object))
        for feature, mapping in self.user_features.items():
            out[feature] = users.map(mapping).fillna(PAD).to_numpy(dtype=object)
        if item_id is not None and self.item_features:
            position = pd.Index(self.items).get_indexer(np.asarray(item_id, dtype=object))
            for feature, values in self.item_features.items():
                padded = np.append(np.asarray(values, dtype=object), PAD)
                out[feature] = padded[np.where(position < 0, len(values), position)]
        return out

    def summary(self) -> dict[str, int | float | str]:
        """Counts for logs: catalog size and per-split users/examples/targets."""
        train_users = len(pd.unique(self.train.user_id)) if len(self.train) else 0
        out: dict[str, int | float | str] = {
            "name": self.name,
            "protocol": self.protocol,
            "max_history": self.max_history,
            "items": len(self.items),
            "train_examples": len(self.train),
            "train_users": int(train_users),
            "train_mean_history": round(float(self.train.history_lengths.mean()), 2)
            if len(self.train)
            else 0.0,
        }
        for split, users in (("valid", self.valid), ("test", self.test)):
            out[f"{split}_users"] = len(users)
            out[f"{split}_targets"] = users.num_targets
        return out

    def __str__(self) -> str:
        return "RetrievalData(" + ", ".join(f"{k}={v}" for k, v in self.summary().items()) + ")"
