"""Shared test setup: tfcro must be imported before TensorFlow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfcro  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
