"""TensorFlow / Keras 2 start-up: the one place that imports TensorFlow first.

TFRS 0.7.7 needs Keras 2 (the ``tf-keras`` package). Since TensorFlow 2.16,
``tf.keras`` is Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` is set before
TensorFlow is first imported. This module sets it when it still can and fails
with the fix spelled out when it cannot.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib import metadata

# The versions verified to work together (scann 1.4.2 is built against TF 2.20;
# TF 2.21 fails to load its ops with an undefined symbol).
WORKING_SET = {
    "tensorflow": "2.20.0",
    "tf-keras": "2.20.1",
    "tensorflow-recommenders": "0.7.7",
    "scann": "1.4.2",
}

_WORKING_SET_TEXT = ", ".join(f"{k}=={v}" for k, v in WORKING_SET.items())

if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402


def _keras_major() -> str:
    version = getattr(tf.keras, "__version__", None)
    if version is None:
        name = getattr(tf.keras, "__name__", "")
        return "2" if name.startswith("tf_keras") else "3"
    return str(version).split(".")[0]


if _keras_major() != "2":
    raise ImportError(
        "tfcro needs Keras 2 (tf-keras) behind `tf.keras`, but `tf.keras` is Keras 3 "
        "in this process. TensorFlow was imported before tfcro without "
        "TF_USE_LEGACY_KERAS=1. Fix: `import tfcro` before `import tensorflow`, or set "
        "the environment variable TF_USE_LEGACY_KERAS=1 before starting Python "
        f"(and install tf-keras; the working set is {_WORKING_SET_TEXT})."
    )

keras = tf.keras


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_versions(strict: bool = False) -> dict[str, str | None]:
    """Compares installed versions with the verified working set.

    Returns the installed versions. A mismatch warns (or raises ImportError when
    ``strict``) with a message naming the working set; a tf-keras whose
    major.minor differs from TensorFlow's always raises, since the two do not
    load together.
    """
    found = {name: installed_version(name) for name in WORKING_SET}
    tf_mm = tf.__version__.split(".")[:2]
    tfk = found.get("tf-keras")
    if tfk is not None and tfk.split(".")[:2] != tf_mm:
        raise ImportError(
            f"tf-keras {tfk} does not match TensorFlow {tf.__version__}: their major.minor "
            "versions must agree. Install the working set: pip install "
            + _WORKING_SET_TEXT.replace(", ", " ")
        )
    mismatched = {
        name: version
        for name, version in found.items()
        if version is not None and version != WORKING_SET[name]
    }
    if mismatched:
        message = (
            "tfcro is verified with "
            + _WORKING_SET_TEXT
            + "; found "
            + ", ".join(f"{k}=={v}" for k, v in mismatched.items())
            + ". ScaNN's TensorFlow ops only load with the TensorFlow version they were built for."
        )
        if strict:
            raise ImportError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return found


_SCANN_CHECKED: dict[str, str | None] = {}


def check_scann(strict: bool = False) -> str | None:
    """Checks, where ScaNN is imported, that it is the working set's version for this TensorFlow.

    ScaNN's compiled ops are built against one TensorFlow release, so a ScaNN
    and TensorFlow pair outside :data:`WORKING_SET` warns (``RuntimeWarning``,
    or ``ImportError`` when ``strict``) with a message naming the working set.
    Checked once per process; returns the installed ScaNN version (``None``:
    not installed).
    """
    if "scann" in _SCANN_CHECKED and not strict:
        return _SCANN_CHECKED["scann"]
    version = installed_version("scann")
    _SCANN_CHECKED["scann"] = version
    problems = []
    if version is not None and version != WORKING_SET["scann"]:
        problems.append(f"scann=={version}")
    if tf.__version__ != WORKING_SET["tensorflow"]:
        problems.append(f"tensorflow=={tf.__version__}")
    if version is not None and problems:
        message = (
            f"ScaNN {version} is used with TensorFlow {tf.__version__}, outside the verified "
            f"working set {_WORKING_SET_TEXT} (found {', '.join(problems)}). ScaNN's ops only "
            "load with the TensorFlow version they were built for; install the working set: "
            "pip install " + _WORKING_SET_TEXT.replace(", ", " ")
        )
        if strict:
            raise ImportError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return version


def register(cls_or_fn=None, *, name: str | None = None):
    """Registers a class or function for Keras serialization under package ``tfcro``."""

    def wrap(obj):
        return keras.utils.register_keras_serializable(package="tfcro", name=name)(obj)

    return wrap if cls_or_fn is None else wrap(cls_or_fn)


# Loaded with the first Keras 2 part of tfcro: say now when the stack is not the verified one.
check_versions()
