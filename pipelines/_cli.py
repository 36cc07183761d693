"""Argument types shared by the pipelines' command lines."""

from __future__ import annotations

import argparse
import copy
import sys


def new_parser(
    job: str, doc: str | None, *, verbose: int | None, keras: bool
) -> argparse.ArgumentParser:
    """The parser of ``python -m pipelines.<job>``: its module docstring as the description,
    and ``--verbose`` (see :func:`add_verbose_argument`, ``verbose`` is its default).
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m pipelines.{job}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_verbose_argument(parser, default=verbose, keras=keras)
    return parser


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _numbers(text: str, kind: type, what: str, example: str) -> list:
    try:
        return [kind(x) for x in _split(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated {what}, e.g. {example}. Received: {text!r}"
        ) from err


def int_list(text: str) -> list[int]:
    """``"20,50,100"`` -> ``[20, 50, 100]``."""
    return _numbers(text, int, "integers", "20,50,100")


def float_list(text: str) -> list[float]:
    """``"0.6,1.0,1.4"`` -> ``[0.6, 1.0, 1.4]``."""
    return _numbers(text, float, "numbers", "0.6,1.0,1.4")


def name_list(text: str) -> list[str]:
    """``"cro, softmax"`` -> ``["cro", "softmax"]``."""
    return _split(text)


#: ``--verbose`` help shared by every job: what 2 adds besides its own meaning.
TF_LOG_HELP = (
    "2 also shows TensorFlow's C++ log (start-up lines, CUDA probing), "
    "otherwise hidden unless TF_CPP_MIN_LOG_LEVEL is set"
)


def add_verbose_argument(
    parser: argparse.ArgumentParser, *, default: int | None, keras: bool
) -> None:
    """``--verbose {0,1,2}``; ``keras``: the value is Keras ``fit``'s verbosity.

    With ``default=None`` the value is left ``None`` when the flag is absent, for
    :func:`fit_verbosity` to pick progress bars or one line per epoch.
    """
    if not keras:
        text = f"0 and 1: the results only; {TF_LOG_HELP} (default: {default})"
    else:
        if default is None:
            when = "default: 1 when stdout is a terminal, 2 otherwise"
        else:
            when = f"default: {default}"
        text = (
            f"Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch ({when}); "
            f"{TF_LOG_HELP}"
        )
    parser.add_argument("--verbose", type=int, default=default, choices=[0, 1, 2], help=text)


def fit_verbosity(verbose: int | None, stream=None) -> int:
    r"""The ``--verbose`` given, else 1 (progress bars) on a terminal and 2 (one line per
    epoch) when stdout goes to a file or pipe, where progress bars are ``\r``/``\b`` noise.
    """
    if verbose is not None:
        return verbose
    stream = sys.stdout if stream is None else stream
    try:
        return 1 if stream.isatty() else 2
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return 2


def explicit_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the options ``argv`` gives explicitly (even at their defaults)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_args(argv)))


def parse_with_preset(parser: argparse.ArgumentParser, argv: list[str] | None):
    """``parser.parse_args(argv)`` where ``--preset NAME`` (:mod:`tfcro.training.presets`)
    replaces the defaults of the options it sets; explicit flags still win.
    """
    from tfcro.training.presets import preset_settings

    args = parser.parse_args(argv)
    if getattr(args, "preset", None) is None:
        return args
    explicit = explicit_options(parser, argv)
    if "use_user_id" in explicit:  # the former spelling of --user-tower id+history
        explicit.add("user_tower")
    for name, value in preset_settings(args.preset).items():
        if name not in explicit:
            setattr(args, name, value)
    return args
