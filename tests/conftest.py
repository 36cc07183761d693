"""Shared test setup: tfcro must be imported before TensorFlow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import random  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tfcro  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)


@pytest.fixture(autouse=True)
def _same_random_state():
    """Every test starts from the same global random state (Python, NumPy, TensorFlow's
    global seed where loaded), whatever ran before it in its pytest-xdist worker."""
    random.seed(0)
    np.random.seed(0)
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "random"):
        tf.random.set_seed(0)
