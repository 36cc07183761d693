"""Runnable jobs (``python -m pipelines.<job>``) that only compose tfcro library calls.

A quiet start: run as ``python -m pipelines.<job>``, this package (imported before
the job, hence before TensorFlow) sets ``TF_CPP_MIN_LOG_LEVEL=3``, which hides
TensorFlow's C++ log: the start-up lines (CUDA driver probing and the ``cuInit``
error on machines without a GPU, CPU-feature advice, the oneDNN notice; oneDNN
itself stays on) and any later C++ INFO/WARNING/ERROR lines. Python errors and
warnings still show. The log comes back with ``--verbose 2`` (or
``--verbose=2``) on the command line, or by setting ``TF_CPP_MIN_LOG_LEVEL``
yourself (e.g. ``0``): a value in the environment always wins. Importing
``pipelines`` any other way (tests, ``python -c``) changes nothing.
"""

import os
import sys


def _wants_tf_log(argv: list[str]) -> bool:
    """Whether the command line asks for ``--verbose 2`` (the jobs' "show everything")."""
    return any(
        arg == "--verbose=2" or (arg == "--verbose" and argv[i + 1 : i + 2] == ["2"])
        for i, arg in enumerate(argv)
    )


# While ``python -m pipelines.<job>`` imports this package, sys.argv[0] is "-m".
if sys.argv[:1] == ["-m"] and not _wants_tf_log(sys.argv[1:]):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
