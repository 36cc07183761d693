"""Dependency safety: the start-up version check and the ScaNN check name the working set."""

import warnings

import pytest

from tfcro import _compat
from tfcro._compat import WORKING_SET, tf

WORKING_SET_TEXT = ", ".join(f"{k}=={v}" for k, v in WORKING_SET.items())


def _fake_versions(monkeypatch, **found):
    versions = {name: WORKING_SET[name] for name in WORKING_SET}
    versions.update({k.replace("_", "-"): v for k, v in found.items()})
    monkeypatch.setattr(_compat, "installed_version", lambda dist: versions.get(dist))


def test_installed_stack_is_the_working_set():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = _compat.check_versions()
    assert found == WORKING_SET
    assert tf.__version__ == WORKING_SET["tensorflow"]


def test_version_mismatch_warns_naming_the_working_set(monkeypatch):
    _fake_versions(monkeypatch, scann="1.3.5", tensorflow_recommenders="0.7.3")
    with pytest.warns(RuntimeWarning) as record:
        _compat.check_versions()
    message = str(record[0].message)
    assert WORKING_SET_TEXT in message and "scann==1.3.5" in message
    with pytest.raises(ImportError, match="tensorflow==2.20.0"):
        _compat.check_versions(strict=True)


def test_tf_keras_of_another_tensorflow_release_fails(monkeypatch):
    _fake_versions(monkeypatch, tf_keras="2.19.0")
    with pytest.raises(ImportError, match="pip install tensorflow==2.20.0 tf-keras==2.20.1"):
        _compat.check_versions()


def test_scann_check_where_scann_is_imported(monkeypatch):
    monkeypatch.setattr(_compat, "_SCANN_CHECKED", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _compat.check_scann() == WORKING_SET["scann"]

    monkeypatch.setattr(_compat, "_SCANN_CHECKED", {})
    _fake_versions(monkeypatch, scann="1.4.0")
    with pytest.warns(RuntimeWarning, match="scann==1.4.0") as record:
        _compat.check_scann()
    assert WORKING_SET_TEXT in str(record[0].message)
    with pytest.raises(ImportError, match="ScaNN 1.4.0 is used with TensorFlow 2.20.0"):
        _compat.check_scann(strict=True)

    # the helper is what the ScaNN entry points call (the one import guard, tfcro.search)
    calls = []
    monkeypatch.setattr(_compat, "check_scann", lambda strict=False: calls.append("x"))
    from tfcro import search

    search.import_scann()
    search.build_scann_index(tf.random.normal([10, 4]).numpy(), range(10), 3, evaluate=False)
    assert len(calls) == 2
