"""tfcro.keras3: the backend checks (tests/keras3_cases.py) in subprocesses, one per Keras
backend and one in a TensorFlow-free environment, and what runs in this process.

The subprocesses start together (each is mostly one busy core) and each test reads its
own result. The TensorFlow-free environment is ``.venv-keras3`` (keras, jax, numpy,
pytest and tfcro without its dependencies), which ``./run test`` creates.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import tfcro
from tests import loss_grid as grid
from tfcro.core import definitions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_TF_PYTHON = os.path.join(
    ROOT, os.environ.get("TFCRO_KERAS3_VENV", ".venv-keras3"), "bin", "python"
)
# In the TensorFlow-free environment: the import claims and a slice of the reference grid.
NO_TF_CASES = (
    "import_left or (reference and sigmoid) or bad_arguments or remove_accidental or compiled"
)


def _start(python, backend, *pytest_args):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["KERAS_BACKEND"] = backend
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/keras3_cases.py"]
    return subprocess.Popen(
        [*command, *pytest_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{name: (exit code, output)}`` of the backend runs, started together."""
    procs = {
        "jax": _start(sys.executable, "jax"),
        "tensorflow": _start(sys.executable, "tensorflow"),
    }
    if os.path.exists(NO_TF_PYTHON):
        procs["no-tensorflow"] = _start(NO_TF_PYTHON, "jax", "-k", NO_TF_CASES)
    if importlib.util.find_spec("torch") is not None:  # not in CI: see the README
        procs["torch"] = _start(sys.executable, "torch")
    export = tmp_path_factory.mktemp("keras3-example") / "user_tower"
    procs["example"] = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.keras3_example",
            "--epochs",
            "2",
            "--export-dir",
            str(export),
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    results = {}
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=1500)
        results[name] = (proc.returncode, output)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_backend_passes_the_reference_grid_and_the_model_checks(runs, backend):
    code, output = runs[backend]
    assert code == 0, output[-6000:]
    assert " passed" in output and " failed" not in output


@pytest.mark.slow
def test_keras3_without_tensorflow(runs):
    if "no-tensorflow" not in runs:
        pytest.skip(f"no TensorFlow-free environment at {NO_TF_PYTHON} (./run test creates it)")
    check = subprocess.run(
        [NO_TF_PYTHON, "-c", "import importlib.util as u; print(u.find_spec('tensorflow'))"],
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "None", "the TensorFlow-free environment has TensorFlow"
    code, output = runs["no-tensorflow"]
    assert code == 0, output[-6000:]
    assert " passed" in output and " failed" not in output


@pytest.mark.slow
def test_torch_backend_where_installed(runs):
    if "torch" not in runs:
        pytest.skip("PyTorch is not installed (its wheels pull GPU libraries; CI has none)")
    code, output = runs["torch"]
    assert code == 0, output[-6000:]


@pytest.mark.slow
def test_keras3_example_trains_both_losses_on_both_backends_and_exports(runs):
    code, output = runs["example"]
    assert code == 0, output[-6000:]
    rows = [
        line
        for line in output.splitlines()
        if line.startswith("| jax") or line.startswith("| tensorflow")
    ]
    assert len(rows) == 4, output[-3000:]
    for row in rows:
        recall = float(row.split("|")[3])
        assert 0.0 < recall <= 1.0, row
    assert "user tower exported for TF Serving" in output


# ----------------------------------------------------------------- in this process
# Keras 3 on the TensorFlow backend beside the Keras 2 losses (TensorFlow is already
# loaded with tf-keras behind tf.keras, which Keras 3 does not use).


@pytest.fixture(scope="module")
def k3():
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        pytest.skip("the in-process checks use Keras 3's TensorFlow backend")
    importlib.import_module("tfcro.losses")  # TensorFlow with tf-keras first, as elsewhere
    return importlib.import_module("tfcro.keras3")


NAMES = list(definitions.CLASS_NAMES.values())


@pytest.mark.parametrize("name", NAMES)
def test_same_arguments_defaults_and_config_on_both_kerases(k3, name):
    k2_cls, k3_cls = getattr(tfcro, name), getattr(k3, name)
    k2_params = inspect.signature(k2_cls).parameters
    k3_params = inspect.signature(k3_cls).parameters
    assert list(k2_params) == list(k3_params)
    for arg in k2_params:
        if arg != "reduction":
            assert k2_params[arg].default == k3_params[arg].default, arg
    k2_config, k3_config = k2_cls().get_config(), k3_cls().get_config()
    for key in ("reduction", "dtype"):
        k2_config.pop(key, None), k3_config.pop(key, None)
    assert k2_config == k3_config
    assert k2_cls.__doc__ == k3_cls.__doc__


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("CROLoss", {"alpha": -1.0}),
        ("CROLoss", {"kernel": "unit_step"}),
        ("CROLoss", {"num_items": 0}),
        ("LambdaCROLoss", {"weight_kernel": "nope"}),
        ("TripletLoss", {"margin": float("nan")}),
        ("PSLLoss", {"surrogate": "cube"}),
        ("SLatKLoss", {"top_k": 2.5}),
        ("BSLLoss", {"temperature_ratio": 0}),
        ("SoftmaxLoss", {"scale": 0}),
    ],
)
def test_same_validation_messages_on_both_kerases(k3, name, kwargs):
    messages = []
    for api in (tfcro, k3):
        with pytest.raises(ValueError) as err:
            getattr(api, name)(**kwargs)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert next(iter(kwargs)) in messages[0]


@pytest.mark.parametrize("method", ["cro", "lambda"])
def test_same_values_as_keras2_in_one_process(k3, method):
    labels, scores = grid.batch("several", seed=7)
    got_2 = grid.losses_and_grads(
        grid.make_loss(method, "softplus", 1.2, 50), labels, scores, "float32"
    )
    got_3 = grid.losses_and_grads(
        grid.make_loss(method, "softplus", 1.2, 50, api=k3), labels, scores, "float32"
    )
    np.testing.assert_allclose(got_2[0], got_3[0], rtol=1e-6)
    np.testing.assert_allclose(got_2[1], got_3[1], rtol=1e-5, atol=1e-7)


def test_docstring_examples_run_on_keras3(k3):
    import doctest

    from tfcro.keras3 import losses

    result = doctest.testmod(losses, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 8


def _run(code: str, **env):
    full = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=600
    )


def test_import_order_keeps_both_faces_working():
    """tfcro, then tfcro.keras3 (JAX), then the Keras 2 losses with TFRS in one process."""
    done = _run(
        "import os, sys, tfcro, tfcro.keras3 as k3\n"
        "assert 'TF_USE_LEGACY_KERAS' not in os.environ and 'tensorflow' not in sys.modules\n"
        "import keras; assert keras.backend.backend() == 'jax'\n"
        "loss = tfcro.CROLoss()  # loads TensorFlow with tf-keras now\n"
        "import tensorflow as tf, tensorflow_recommenders as tfrs\n"
        "assert tf.keras.__name__.startswith('tf_keras'), tf.keras.__name__\n"
        "tfrs.tasks.Retrieval(loss=tfcro.LambdaCROLoss(reduction='sum'))\n"
        "y, s = [[1.0, 0.0]], [[0.5, 0.2]]\n"
        "print(float(loss(y, s)), float(k3.CROLoss()(y, s)))\n",
        KERAS_BACKEND="jax",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    value_2, value_3 = map(float, done.stdout.split()[-2:])
    assert value_2 == pytest.approx(value_3, rel=1e-6)


def test_both_op_namespaces_define_every_name(k3):
    from tfcro.core import keras_ops, ops, tf_ops

    for name in ops.NAMES:
        assert hasattr(tf_ops, name), f"tf_ops.{name}"
        assert hasattr(keras_ops, name), f"keras_ops.{name}"


def test_the_core_imports_no_framework():
    done = _run(
        "import sys\n"
        "import tfcro.core.definitions, tfcro.core.functional, tfcro.core.engine\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
