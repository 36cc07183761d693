"""tfcro.validation: the shared argument checks and their wording."""

import math

import numpy as np
import pytest

from tfcro import validation as v


def _message(call):
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("value", [3, np.int64(3)])
def test_check_int_accepts_python_and_numpy_integers(value):
    assert v.check_int("epochs", value) == 3 and type(v.check_int("epochs", value)) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "3", None, np.float32(3)])
def test_check_int_rejects_with_name_value_and_rule(value):
    message = _message(lambda: v.check_int("epochs", value))
    assert message == f"`epochs` should be an integer >= 1. Received: epochs={value!r}"


def test_check_int_minimum_none_and_hint():
    assert v.check_int("seed", 0, 0) == 0
    assert v.check_int("k_core", None, 1, allow_none=True) is None
    message = _message(lambda: v.check_int("k_core", -2, 1, allow_none=True, hint="or omit it"))
    assert message == "`k_core` should be an integer >= 1 or None. Received: k_core=-2. or omit it"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "1.0", b"1", True, None, [1]])
def test_check_float_rejects_non_finite_and_non_numbers(value):
    assert "`alpha` should be a finite float. Received: alpha=" in _message(
        lambda: v.check_float("alpha", value)
    )


def test_check_float_bounds():
    assert v.check_float("alpha", 0) == 0.0
    assert v.check_float("alpha", np.float32(0.5), minimum=0.0) == 0.5
    assert "a float > 0" in _message(lambda: v.check_float("scale", 0.0, minimum=0.0, strict=True))
    assert "a float >= 0" in _message(lambda: v.check_float("margin", -1e-9, minimum=0.0))
    assert v.check_float("lr", None, minimum=0.0, allow_none=True) is None


def test_check_fraction_ends():
    assert v.check_fraction("noise", 0) == 0.0 and v.check_fraction("noise", 1) == 1.0
    assert "(0, 1)" in _message(lambda: v.check_fraction("f", 0.0, low_open=True, high_open=True))
    assert "[0, 1)" in _message(lambda: v.check_fraction("f", 1.0, high_open=True))
    assert "[0, 1]" in _message(lambda: v.check_fraction("f", "0.5"))


def test_check_choice_and_subset():
    assert v.check_choice("protocol", "sequential", ("sequential", "collaborative")) == "sequential"
    assert _message(lambda: v.check_choice("protocol", "random", ("a", "b"))) == (
        "`protocol` should be one of ['a', 'b']. Received: protocol='random'"
    )
    assert v.check_subset("methods", ["a"], ("a", "b")) == ("a",)
    for bad in ([], ["c"], ["a", "c"]):
        assert "a non-empty subset of ['a', 'b']" in _message(
            lambda bad=bad: v.check_subset("methods", bad, ("a", "b"))
        )


def test_check_fields_names_unknown_keys_and_allowed_ones():
    import dataclasses

    @dataclasses.dataclass
    class Config:
        a: int = 1
        b: int = 2

    assert v.check_fields(Config, {"a": 3}) == {"a": 3}
    assert _message(lambda: v.check_fields(Config, {"a": 3, "c": 4, "z": 0})) == (
        "Unknown Config keys ['c', 'z']; allowed: ['a', 'b']"
    )


def test_check_bool_takes_bools_only():
    assert v.check_bool("flag", True) is True and v.check_bool("flag", np.bool_(False)) is False
    for value in (1, "yes", None):
        assert _message(lambda value=value: v.check_bool("flag", value)) == (
            f"`flag` should be True or False. Received: flag={value!r}"
        )
