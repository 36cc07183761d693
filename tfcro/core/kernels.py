"""Comparison kernels ``phi`` of CROLoss (paper section 3.4).

A kernel compares a negative with a positive through the scaled score gap
``x = scale * (s_neg - s_pos)`` and returns a non-negative contribution to the
rank estimate ``r_hat = 1 + R * sum_j phi(x_j)``. The losses only ever call
:meth:`Kernel.log_value`, ``log(phi(x))`` with ``-inf`` where ``phi`` is 0, so
that the rank sum of an unbounded kernel (``exponential``, user callables) can be
formed with a log-sum-exp and never overflows for score gaps of 1e5; bounded
kernels (``phi(x) <= |x| + c``) are summed directly, which is cheaper. Each
kernel owns its own numerics and its own configuration; the loss never asks
which kernel it has.

Built-in names: ``unit_step``, ``sigmoid``, ``softplus``, ``exponential``,
``hinge``. A kernel's ``value(x)`` and ``log_value(x)`` take one tensor of any
framework (the op namespace follows the tensor: :func:`tfcro.core.ops.namespace_for`).
Kernels are Keras-serialisable objects, registered under package ``tfcro`` with
Keras 2 by :mod:`tfcro.losses.kernels` and with Keras 3 by :mod:`tfcro.keras3`:
``Hinge(2.0)`` saves and restores its margin. Custom kernels are a :class:`Kernel`
subclass or an elementwise callable ``phi(x) -> tensor``; to be used in a Keras loss
(which must save) they have to be registered with the Keras they are used with
(``tf.keras.utils.register_keras_serializable`` or
``keras.saving.register_keras_serializable``; a subclass whose ``__init__`` takes
arguments also returns them from ``get_config``). :func:`get` with
``serializable=True`` refuses one that does not round-trip, at construction.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from tfcro.core.ops import namespace_for
from tfcro.validation import check_float


def safe_log(ops, value):
    """``log(value)`` that is ``-inf`` (with a zero, not NaN, gradient) where value <= 0."""
    positive = ops.greater(value, 0.0)
    return ops.where(positive, ops.log(ops.where(positive, value, 1.0)), ops.NEG_INF)


class Kernel:
    """Base class: a comparison kernel ``phi`` with a numerically stable ``log(phi)``."""

    name: str = "kernel"
    #: False for kernels that only estimate ranks (no useful gradient).
    differentiable: bool = True
    #: True when ``phi(x) <= |x| + const``: the rank sum cannot overflow float32 and is
    #: formed directly from :meth:`value` (cheaper); otherwise in log space.
    bounded: bool = False

    def value(self, x):
        """``phi(x)``."""
        return namespace_for(x).exp(self.log_value(x))

    def log_value(self, x):
        """``log(phi(x))``, ``-inf`` where ``phi(x) == 0``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The arguments of ``__init__`` (none for the parameter-free built-ins)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Kernel:
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class UnitStep(Kernel):
    """``phi(x) = 1 if x > 0 else 0``: the exact rank; only as a lambda weight kernel."""

    name = "unit_step"
    bounded = True
    differentiable = False

    def value(self, x):
        ops = namespace_for(x)
        return ops.where(ops.greater(x, 0.0), ops.ones_like(x), ops.zeros_like(x))

    def log_value(self, x):
        ops = namespace_for(x)
        return ops.where(ops.greater(x, 0.0), ops.zeros_like(x), ops.NEG_INF)


class Sigmoid(Kernel):
    """``phi(x) = 1 / (1 + exp(-x))``: the closest smooth rank estimate."""

    name = "sigmoid"
    bounded = True

    def value(self, x):
        return namespace_for(x).sigmoid(x)

    def log_value(self, x):
        return namespace_for(x).log_sigmoid(x)


class Softplus(Kernel):
    """``phi(x) = log(1 + exp(x))``: the paper's best all-rounder (BPR at alpha 0)."""

    name = "softplus"
    bounded = True
    # Below this, softplus(x) == exp(x) to float32 precision and log(softplus) == x.
    _LINEAR_BELOW = -20.0

    def value(self, x):
        return namespace_for(x).softplus(x)

    def log_value(self, x):
        ops = namespace_for(x)
        tail = ops.greater(self._LINEAR_BELOW, x)
        body = ops.where(tail, ops.zeros_like(x), x)
        return ops.where(tail, x, ops.log(ops.softplus(body)))


class Exponential(Kernel):
    """``phi(x) = exp(x)``: softmax cross-entropy at alpha 1; best for tiny N / catalog."""

    name = "exponential"

    def value(self, x):
        return namespace_for(x).exp(x)

    def log_value(self, x):
        return x


class Hinge(Kernel):
    """``phi(x) = max(0, x + margin)``: the triplet loss at alpha 0."""

    name = "hinge"
    bounded = True

    def __init__(self, margin: float = 1.0):
        self.margin = check_margin(margin)

    def value(self, x):
        return namespace_for(x).relu(x + self.margin)

    def log_value(self, x):
        return safe_log(namespace_for(x), x + self.margin)

    def get_config(self):
        return {"margin": self.margin}


class CallableKernel(Kernel):
    """Wraps a user function ``phi(x)`` (elementwise, non-negative, float32 in and out).

    Serialised as the Keras config of the function (register it with the Keras in use
    so that it can be found again).
    """

    def __init__(self, fn: Callable):
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def value(self, x):
        return namespace_for(x).float32(self.fn(x))

    def log_value(self, x):
        return safe_log(namespace_for(x), self.value(x))

    def get_config(self):
        raise NotImplementedError("serialised by tfcro.core.kernels.serialize")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.fn is self.fn

    def __hash__(self) -> int:
        return hash((type(self), id(self.fn)))

    def __repr__(self) -> str:
        return f"CallableKernel({self.name})"


KERNELS: dict[str, type[Kernel]] = {
    cls.name: cls for cls in (UnitStep, Sigmoid, Softplus, Exponential, Hinge)
}
#: Kernels usable as the gradient kernel (``kernel=``) of a loss.
GRADIENT_KERNELS = tuple(name for name, cls in KERNELS.items() if cls.differentiable)
#: The classes each Keras registers under package ``tfcro``.
REGISTERED = (UnitStep, Sigmoid, Softplus, Exponential, Hinge)


def check_margin(margin: Any) -> float:
    """The hinge margin as a finite float >= 0, or ValueError naming it."""
    return check_float(
        "margin",
        margin,
        minimum=0.0,
        hint="A negative margin leaves negatives that outscore the positive unpenalised",
    )


def get(
    identifier,
    *,
    saving,
    margin: float = 1.0,
    parameter: str = "kernel",
    allowed: tuple[str, ...] | None = None,
    serializable: bool = False,
) -> Kernel:
    """Resolves a kernel name, :class:`Kernel`, serialised kernel or callable.

    Args:
      identifier: a name in :data:`KERNELS`, a :class:`Kernel`, a callable
        ``phi(x)``, or a config produced by :func:`serialize`.
      saving: the Keras serialisation functions (a module with
        ``serialize_keras_object`` and ``deserialize_keras_object``: Keras 2's
        ``tf.keras.utils`` or Keras 3's ``keras.saving``).
      margin: the margin of a kernel given by the name ``"hinge"`` (a
        :class:`Hinge` object carries its own).
      parameter: the argument name used in error messages.
      allowed: the built-in names allowed for this parameter (default: all).
      serializable: refuse a kernel that does not survive
        ``get(serialize(kernel))`` (what a Keras loss's ``get_config`` /
        ``from_config`` do), so that a loss fails when it is built, not when it is saved.

    Raises:
      ValueError: for an unknown name, a name not in ``allowed``, or (with
        ``serializable``) a custom kernel that cannot be restored from its config.
    """
    allowed = tuple(KERNELS) if allowed is None else allowed
    kernel = _resolve(identifier, saving, margin, parameter, allowed)
    if kernel.name in KERNELS and type(kernel) is KERNELS[kernel.name]:
        _check_allowed(kernel.name, identifier, parameter, allowed)
    if serializable:
        _check_round_trip(kernel, identifier, saving, parameter)
    return kernel


def _resolve(identifier, saving, margin, parameter, allowed) -> Kernel:
    if isinstance(identifier, Kernel):
        return identifier
    if isinstance(identifier, dict):
        identifier = saving.deserialize_keras_object(identifier)
        if isinstance(identifier, Kernel):
            return identifier
    if isinstance(identifier, str):
        key = identifier.strip().lower()
        _check_allowed(key, identifier, parameter, allowed)
        return Hinge(margin) if key == "hinge" else KERNELS[key]()
    if callable(identifier):
        return CallableKernel(identifier)
    raise ValueError(
        f"`{parameter}` should be one of {list(allowed)}, a Kernel or a callable phi(x). "
        f"Received: {parameter}={identifier!r} of type {type(identifier).__name__}"
    )


def _check_allowed(key: str, identifier: Any, parameter: str, allowed: tuple[str, ...]) -> None:
    if key in allowed:
        return
    extra = ""
    if key in KERNELS:
        extra = f" `{key}` has no useful gradient; use it only as `weight_kernel`."
    raise ValueError(
        f"`{parameter}` should be one of {list(allowed)}, a Kernel or a callable phi(x). "
        f"Received: {parameter}={identifier!r}.{extra}"
    )


def _check_round_trip(kernel: Kernel, identifier: Any, saving, parameter: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns when it serialises a lambda
            config = serialize(kernel, saving=saving)
            restored = _resolve(config, saving, 1.0, parameter, tuple(KERNELS))
        problem = None if restored == kernel else f"it comes back as {restored!r}"
    except Exception as err:  # noqa: BLE001 - any failure means "cannot be restored"
        problem = f"{type(err).__name__}: {str(err).strip()[:200]}"
    if problem is not None:
        raise ValueError(
            f"`{parameter}` should be a built-in name or a Keras-serialisable kernel (a Keras "
            f"loss must save and restore it). Received: {parameter}={identifier!r}, which does "
            f"not round-trip ({problem}). Decorate the function or Kernel subclass with "
            "@tf.keras.utils.register_keras_serializable(package=...) (Keras 2) or "
            "@keras.saving.register_keras_serializable(package=...) (Keras 3); a subclass "
            "whose __init__ takes arguments must return them from get_config()."
        )


def serialize(kernel: Kernel, *, saving) -> str | dict:
    """The config form of a kernel, the inverse of :func:`get`.

    A parameter-free built-in is its name (``"softplus"``); a user function is its
    Keras config; every other kernel (``Hinge(2.0)``, registered subclasses) is
    ``saving.serialize_keras_object(kernel)``, which carries its ``get_config``.
    """
    if type(kernel) is CallableKernel:
        return saving.serialize_keras_object(kernel.fn)
    if type(kernel) is KERNELS.get(kernel.name) and not kernel.get_config():
        return kernel.name
    return saving.serialize_keras_object(kernel)


def keras_bindings(saving, register):
    """Registers the built-in kernels with one Keras (``register(cls)``) and returns
    ``(get, serialize)`` with that Keras's serialisation functions ``saving`` bound: how
    :mod:`tfcro.losses.kernels` (Keras 2) and :mod:`tfcro.keras3.kernels` expose them.
    """
    for cls in REGISTERED:
        register(cls)
    bound = []
    for fn in (get, serialize):
        partial = functools.partial(fn, saving=saving)
        functools.update_wrapper(partial, fn)
        bound.append(partial)
    return tuple(bound)


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
    "check_margin",
]
