"""What the tests that run the pipelines share: the project root, the tiny runs' command-line
options, and one way to start ``python`` in a subprocess.

The options are dicts keyed by the flag's name with underscores (``num_users`` for
``--num-users``); a test extends or overrides them and turns them into flags with ``flags``.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ----------------------------------------------------------------------------- tiny runs

SIZES = {"num_users": 150, "num_items": 80}  # the tiny generated dataset
SYNTHETIC = {"dataset": "synthetic", **SIZES}
BATCHES = {"batch_size": 64, "num_negatives": 32}
# one epoch on the tiny synthetic dataset, Recall@10 monitored
ONE_EPOCH = {**SYNTHETIC, "epochs": 1, **BATCHES, "ks": "10", "monitor": "recall@10"}
# two epochs, no export; the dataset is the test's own
TWO_EPOCHS = {"epochs": 2, **BATCHES, "learning_rate": 0.01, "ks": "5,10,20", "no_export": True}
# two epochs on the tiny synthetic dataset, validated on Recall@20 after every epoch with no
# early stopping, one log line per epoch
LOGGED = {
    **SYNTHETIC,
    **TWO_EPOCHS,
    "ks": "10,20",
    "monitor": "recall@20",
    "patience": -1,
    "verbose": 2,
}


def flags(*bases: dict, **options) -> list[str]:
    """The command-line flags of ``bases`` and ``options`` merged, later ones winning.

    ``flags(num_users=150, no_export=True)`` is ``["--num-users", "150", "--no-export"]``:
    True is a bare switch, False or None leaves the flag out, any other value is its ``str``.
    """
    merged = {}
    for base in bases:
        merged.update(base)
    merged.update(options)
    args = []
    for name, value in merged.items():
        if value is None or value is False:
            continue
        args.append("--" + name.replace("_", "-"))
        if value is not True:
            args.append(str(value))
    return args


def training_config(args):
    """The ``TrainingConfig`` that ``python -m pipelines.train *args`` trains with."""
    from pipelines import train as train_cli

    return train_cli.config_from_args(train_cli.build_parser().parse_args(args))


# ----------------------------------------------------------------------------- subprocesses


def environ(*, without=(), **settings):
    """This process's environment less the names in ``without``, with ``settings`` on top."""
    env = {name: value for name, value in os.environ.items() if name not in without}
    env.update(settings)
    return env


def run_python(*args, env=None, timeout=600):
    """``python *args`` in the project root, waited for; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def run_module(module, *args, env=None, timeout=600):
    """``python -m module *args`` in the project root (see ``run_python``)."""
    return run_python("-m", module, *args, env=env, timeout=timeout)


def start_python(*args, env, log):
    """``python *args`` in the project root, not waited for; stdout and stderr go to ``log``."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
