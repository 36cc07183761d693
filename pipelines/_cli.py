"""Argument types shared by the pipelines' command lines."""

from __future__ import annotations

import argparse


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def int_list(text: str) -> list[int]:
    """``"20,50,100"`` -> ``[20, 50, 100]``."""
    try:
        return [int(x) for x in _split(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, e.g. 20,50,100. Received: {text!r}") from err


def float_list(text: str) -> list[float]:
    """``"0.6,1.0,1.4"`` -> ``[0.6, 1.0, 1.4]``."""
    try:
        return [float(x) for x in _split(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, e.g. 0.6,1.0,1.4. Received: {text!r}") from err


def name_list(text: str) -> list[str]:
    """``"cro, softmax"`` -> ``["cro", "softmax"]``."""
    return _split(text)
