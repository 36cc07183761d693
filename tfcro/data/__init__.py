"""Data layer: readers, cleaning, a synthetic dataset, split protocols, tf.data feeding.

The contract (docs/architecture.md): ids are ``str``, history padding is
:data:`PAD` (``""``); readers give :class:`Interactions`, protocols give
:class:`RetrievalData`.

Example:
    >>> from tfcro import data as tdata
    >>> interactions = tdata.load_dataset("synthetic", num_users=200, num_items=100)
    >>> split = tdata.sequential_split(interactions, max_history=20, seed=0)
    >>> batches = tdata.train_dataset(split.train, batch_size=256, seed=0)

Modules: :mod:`~tfcro.data.types` (the contract), :mod:`~tfcro.data.readers`,
:mod:`~tfcro.data.preprocess`, :mod:`~tfcro.data.synthetic`,
:mod:`~tfcro.data.datasets` (``load_dataset``), :mod:`~tfcro.data.protocols`,
:mod:`~tfcro.data.indexing` (integer ids for id-tower models),
:mod:`~tfcro.data.feeding` (the only one that needs TensorFlow; it loads on first use, so
that the Keras 3 example reads data without it).
"""

from tfcro._lazy import lazy_getattr
from tfcro.data import preprocess, readers, synthetic
from tfcro.data.datasets import DATASETS, load_dataset
from tfcro.data.indexing import IndexedQueries, IndexedSplit, index_split
from tfcro.data.protocols import (
    VALID_SPLITS,
    collaborative_split,
    random_holdout,
    sequential_split,
)
from tfcro.data.readers import DataFormatError
from tfcro.data.types import PAD, EvalUsers, Interactions, RetrievalData, TrainExamples

_FEEDING = ("train_dataset", "index_dataset", "eval_batches")
__getattr__ = lazy_getattr("tfcro.data", dict.fromkeys(_FEEDING, "feeding"), ("feeding",))


__all__ = [
    "PAD",
    "Interactions",
    "RetrievalData",
    "TrainExamples",
    "EvalUsers",
    "DataFormatError",
    "readers",
    "preprocess",
    "synthetic",
    "DATASETS",
    "load_dataset",
    "sequential_split",
    "collaborative_split",
    "random_holdout",
    "VALID_SPLITS",
    "index_split",
    "IndexedSplit",
    "IndexedQueries",
    "train_dataset",
    "index_dataset",
    "eval_batches",
]
