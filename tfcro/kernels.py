"""Comparison kernels ``phi`` of CROLoss (SPEC.md, paper section 3.3).

A kernel compares a negative with a positive through the scaled score gap
``x = scale * (s_neg - s_pos)`` and returns a non-negative contribution to the
rank estimate ``r_hat = 1 + R * sum_j phi(x_j)``. The losses only ever call
:meth:`Kernel.log_value`, ``log(phi(x))`` with ``-inf`` where ``phi`` is 0, so
that the rank sum of an unbounded kernel (``exponential``, user callables) can be
formed with a log-sum-exp and never overflows for score gaps of 1e5; bounded
kernels (``phi(x) <= |x| + c``) are summed directly, which is cheaper. Each
kernel owns its own numerics; the loss never asks which kernel it has.

Built-in names: ``unit_step``, ``sigmoid``, ``softplus``, ``exponential``,
``hinge``. A user callable ``phi(x) -> tensor`` (elementwise, non-negative) is
accepted too; register it with
``tf.keras.utils.register_keras_serializable`` to save models that use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfcro._compat import keras, register, tf

_NEG_INF = float("-inf")


def _safe_log(value: tf.Tensor) -> tf.Tensor:
    """``log(value)`` that is ``-inf`` (with a zero, not NaN, gradient) where value <= 0."""
    positive = value > 0.0
    return tf.where(positive, tf.math.log(tf.where(positive, value, 1.0)), _NEG_INF)


class Kernel:
    """Base class: a comparison kernel ``phi`` with a numerically stable ``log(phi)``."""

    name: str = "kernel"
    #: False for kernels that only estimate ranks (no useful gradient).
    differentiable: bool = True
    #: True when ``phi(x) <= |x| + const``: the rank sum cannot overflow float32 and is
    #: formed directly from :meth:`value` (cheaper); otherwise in log space.
    bounded: bool = False

    def value(self, x: tf.Tensor) -> tf.Tensor:
        """``phi(x)``."""
        return tf.exp(self.log_value(x))

    def log_value(self, x: tf.Tensor) -> tf.Tensor:
        """``log(phi(x))``, ``-inf`` where ``phi(x) == 0``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class UnitStep(Kernel):
    """``phi(x) = 1 if x > 0 else 0``: the exact rank; only as a lambda weight kernel."""

    name = "unit_step"
    bounded = True
    differentiable = False

    def value(self, x):
        return tf.cast(x > 0.0, x.dtype)

    def log_value(self, x):
        return tf.where(x > 0.0, tf.zeros_like(x), _NEG_INF)


class Sigmoid(Kernel):
    """``phi(x) = 1 / (1 + exp(-x))``: the closest smooth rank estimate."""

    name = "sigmoid"
    bounded = True

    def value(self, x):
        return tf.math.sigmoid(x)

    def log_value(self, x):
        return tf.math.log_sigmoid(x)


class Softplus(Kernel):
    """``phi(x) = log(1 + exp(x))``: the paper's best all-rounder (BPR at alpha 0)."""

    name = "softplus"
    bounded = True
    # Below this, softplus(x) == exp(x) to float32 precision and log(softplus) == x.
    _LINEAR_BELOW = -20.0

    def value(self, x):
        return tf.math.softplus(x)

    def log_value(self, x):
        tail = x < self._LINEAR_BELOW
        body = tf.where(tail, tf.zeros_like(x), x)
        return tf.where(tail, x, tf.math.log(tf.math.softplus(body)))


class Exponential(Kernel):
    """``phi(x) = exp(x)``: softmax cross-entropy at alpha 1; best for tiny N / catalog."""

    name = "exponential"

    def value(self, x):
        return tf.exp(x)

    def log_value(self, x):
        return x


class Hinge(Kernel):
    """``phi(x) = max(0, x + margin)``: the triplet loss at alpha 0."""

    name = "hinge"
    bounded = True

    def __init__(self, margin: float = 1.0):
        self.margin = _check_margin(margin)

    def value(self, x):
        return tf.nn.relu(x + self.margin)

    def log_value(self, x):
        return _safe_log(x + self.margin)

    def get_config(self):
        return {"margin": self.margin}


class CallableKernel(Kernel):
    """Wraps a user function ``phi(x)`` (elementwise, non-negative, float32 in and out)."""

    def __init__(self, fn: Callable[[tf.Tensor], tf.Tensor]):
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def value(self, x):
        return tf.cast(self.fn(x), x.dtype)

    def log_value(self, x):
        return _safe_log(self.value(x))


KERNELS: dict[str, type[Kernel]] = {
    cls.name: cls for cls in (UnitStep, Sigmoid, Softplus, Exponential, Hinge)
}
#: Kernels usable as the gradient kernel (``kernel=``) of a loss.
GRADIENT_KERNELS = tuple(name for name, cls in KERNELS.items() if cls.differentiable)


def _check_margin(margin: Any) -> float:
    try:
        value = float(margin)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(margin, bool) or not (value == value and 0 <= value < float("inf")):
        raise ValueError("`margin` should be a finite float >= 0 (a negative margin leaves "
                         f"negatives that outscore the positive unpenalised). "
                         f"Received: margin={margin!r}")
    return value


def get(
    identifier: str | Kernel | Callable | dict,
    *,
    margin: float = 1.0,
    parameter: str = "kernel",
    allowed: tuple[str, ...] | None = None,
) -> Kernel:
    """Resolves a kernel name, :class:`Kernel`, serialized function or callable.

    Args:
      identifier: a name in :data:`KERNELS`, a :class:`Kernel`, a callable
        ``phi(x)``, or the config dict of a registered Keras-serializable function.
      margin: the hinge margin (ignored by other kernels).
      parameter: the argument name used in error messages.
      allowed: the names allowed for this parameter (default: all built-ins).

    Raises:
      ValueError: for an unknown name or a name not in ``allowed``.
    """
    allowed = tuple(KERNELS) if allowed is None else allowed
    if isinstance(identifier, Kernel):
        return identifier
    if isinstance(identifier, dict):
        identifier = keras.utils.deserialize_keras_object(identifier)
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        if key not in allowed:
            extra = ""
            if key in KERNELS:
                extra = f" `{key}` has no useful gradient; use it only as `weight_kernel`."
            raise ValueError(
                f"`{parameter}` should be one of {list(allowed)} or a callable phi(x). "
                f"Received: {parameter}={identifier!r}.{extra}"
            )
        if key == "hinge":
            return Hinge(_check_margin(margin))
        return KERNELS[key]()
    if callable(identifier):
        return CallableKernel(identifier)
    raise ValueError(
        f"`{parameter}` should be one of {list(allowed)} or a callable phi(x). "
        f"Received: {parameter}={identifier!r} of type {type(identifier).__name__}."
    )


def serialize(kernel: Kernel) -> str | dict:
    """The config form of a kernel: its name, or the Keras config of a user function."""
    if isinstance(kernel, CallableKernel):
        return keras.utils.serialize_keras_object(kernel.fn)
    if type(kernel) in KERNELS.values():
        return kernel.name
    raise ValueError(
        f"Cannot serialize kernel {kernel!r}: pass a built-in name or a registered "
        "Keras-serializable function."
    )


__all__ = [
    "KERNELS",
    "GRADIENT_KERNELS",
    "Kernel",
    "UnitStep",
    "Sigmoid",
    "Softplus",
    "Exponential",
    "Hinge",
    "CallableKernel",
    "get",
    "serialize",
    "register",
]
