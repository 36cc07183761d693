"""Argument types shared by the pipelines' command lines."""

from __future__ import annotations

import argparse


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _numbers(text: str, kind: type, what: str, example: str) -> list:
    try:
        return [kind(x) for x in _split(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated {what}, e.g. {example}. Received: {text!r}") from err


def int_list(text: str) -> list[int]:
    """``"20,50,100"`` -> ``[20, 50, 100]``."""
    return _numbers(text, int, "integers", "20,50,100")


def float_list(text: str) -> list[float]:
    """``"0.6,1.0,1.4"`` -> ``[0.6, 1.0, 1.4]``."""
    return _numbers(text, float, "numbers", "0.6,1.0,1.4")


def name_list(text: str) -> list[str]:
    """``"cro, softmax"`` -> ``["cro", "softmax"]``."""
    return _split(text)
