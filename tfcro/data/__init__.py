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
:mod:`~tfcro.data.feeding`.
"""

from tfcro.data import preprocess, readers, synthetic
from tfcro.data.datasets import DATASETS, load_dataset
from tfcro.data.feeding import eval_batches, index_dataset, train_dataset
from tfcro.data.protocols import VALID_SPLITS, collaborative_split, sequential_split
from tfcro.data.readers import DataFormatError
from tfcro.data.types import PAD, EvalUsers, Interactions, RetrievalData, TrainExamples

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
    "VALID_SPLITS",
    "train_dataset",
    "index_dataset",
    "eval_batches",
]
