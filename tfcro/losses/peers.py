r"""The recall-oriented softmax variants beside CROLoss: PSL, SL@K and BSL.

Same call contract as every tfcro loss (:mod:`tfcro.losses.pairwise`): ``[B, C]``
0/1 labels (multi-hot and ``tf.eye(B, C)`` included), scores at or below ``-1e30``
absent, a ``[B]`` row loss (PSL and SL@K: the mean over the row's positives; BSL: a
log-mean-exp over them), Keras reductions and sample weights, serialisable. A
positive without any negative adds 0 (and no NaN gradient).

Temperatures. The papers write their losses on raw scores ``s`` (cosines) with a
softmax temperature ``tau``; here ``scale`` is ``1 / tau`` as for the other losses.
Inside :class:`~tfcro.models.TwoTowerModel` the model has already multiplied the
scores by its own ``scale`` (and the loss keeps ``scale=1``); PSL's and SL@K's other
temperatures are in raw-score units, so those losses take ``input_scale``, the
factor already applied to their inputs (``None``: 1, and the model sets its score
scale there), and their total ``1 / tau`` is ``scale * input_scale``.
"""

from __future__ import annotations

from typing import Any

from tfcro._compat import keras, register
from tfcro.losses import functional
from tfcro.losses.base import RetrievalLoss, check_num_items
from tfcro.validation import check_choice, check_float, check_int


def _check_input_scale(value: Any) -> float | None:
    if value is None:
        return None
    return check_float("input_scale", value, minimum=0.0, strict=True)


class _RawScoreLoss(RetrievalLoss):
    """A loss with temperatures on raw scores: ``input_scale`` and the total ``outer``."""

    def __init__(self, scale=1.0, input_scale=None, reduction=None, name=None):
        super().__init__(
            scale=scale,
            reduction=keras.losses.Reduction.AUTO if reduction is None else reduction,
            name=name,
        )
        self.input_scale = _check_input_scale(input_scale)

    @property
    def outer(self) -> float:
        """``1 / tau`` of the raw scores: ``scale * input_scale``."""
        return self.scale * (self.input_scale or 1.0)

    def get_config(self):
        config = super().get_config()
        config["input_scale"] = self.input_scale
        return config


@register
class PSLLoss(_RawScoreLoss):
    r"""Pairwise Softmax Loss (Yang et al., NeurIPS 2024).

    Softmax loss whose pair term ``exp(d)`` is replaced by a better-bounded
    surrogate: with ``d_ij = (s_j - s_i) / tau`` (``tau`` = ``surrogate_tau``) and
    ``sigma(d) = log(1 + tanh d)`` (``"tanh"``), ``log(1 + atan d)`` (``"atan"``) or
    ``log(relu(1 + d))`` (``"relu"``),

    ``loss_i = logsumexp_{j in J} sigma(d_ij) / tau*``

    the log of a *sum* over the negatives (the authors' default ``method=1``; the
    positive is not in it), ``1 / tau* = scale * input_scale``. ``sigma(d) <= d`` with
    equality to first order at ``d = 0``, so each pair's weight stays bounded
    where softmax's grows exponentially. The authors require ``tau >= 2`` for
    cosine scores (``|s_j - s_i| <= 2``, so ``"relu"`` stays defined); pairs outside a
    surrogate's domain (``"atan"``/``"relu"`` at ``1 + f(d) <= 0``) add nothing.

    Args:
      surrogate: ``"tanh"`` (default), ``"atan"`` or ``"relu"``.
      surrogate_tau: ``tau``, the width of the surrogate in raw-score units (> 0;
        the authors: 2).
      scale: ``1 / tau*`` on raw scores (the authors' Yelp-style setting: 10).
      input_scale: the factor already applied to ``y_pred`` (None: 1;
        :class:`~tfcro.models.TwoTowerModel` sets its score scale).
      reduction, name: Keras.

    Example:
    >>> import tfcro, tensorflow as tf
    >>> loss = tfcro.PSLLoss(scale=1.0, surrogate_tau=2.0)
    >>> y_true = tf.constant([[1.0, 0.0, 0.0]])
    >>> y_pred = tf.constant([[0.9, 0.1, 0.5]])
    >>> round(float(loss(y_true, y_pred)), 4)  # log((1 + tanh(-0.4)) + (1 + tanh(-0.2)))
    0.3525

    Reference: W. Yang, J. Chen et al., "PSL: Rethinking and Improving Softmax Loss
    from Pairwise Perspective for Recommendation", NeurIPS 2024 (code:
    Tiny-Snow/IR-Benchmark, ``optimizer/optim_PSL.py``).
    """

    default_name = "psl_loss"

    def __init__(
        self,
        surrogate: str = "tanh",
        surrogate_tau: float = 2.0,
        scale: float = 1.0,
        input_scale: float | None = None,
        reduction=keras.losses.Reduction.AUTO,
        name: str | None = None,
    ):
        super().__init__(scale, input_scale, reduction, name)
        self.surrogate = check_choice("surrogate", surrogate, functional.PSL_SURROGATES)
        self.surrogate_tau = check_float("surrogate_tau", surrogate_tau, minimum=0.0, strict=True)

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.psl_positive_loss(
            gaps,
            negatives,
            num_negatives,
            surrogate=self.surrogate,
            tau=self.surrogate_tau,
            outer=self.outer,
        )

    def get_config(self):
        config = super().get_config()
        config.update(surrogate=self.surrogate, surrogate_tau=self.surrogate_tau)
        return config


@register
class SLatKLoss(_RawScoreLoss):
    r"""Softmax Loss @K (Yang et al., KDD 2025): softmax weighted by "is the positive in
    the top K?".

    ``loss_i = sigmoid((s_i - beta^K) / tau_w) * logsumexp_{j in J} (s_j - s_i) / tau``

    with ``1 / tau = scale * input_scale``, ``tau_w`` = ``weight_tau`` (raw-score
    units) and ``beta^K`` the score of the user's ``K``-th best item, estimated
    without gradient from the row's candidates (:func:`tfcro.losses.functional.
    topk_quantile_score`): their ``K``-th largest score (``num_items=None``, the
    authors' estimate from the user's positives and sampled negatives), or, with the
    catalog size ``N``, their ``ceil(K * C / N)``-th largest of ``C`` (the same
    quantile of a uniform sample: this is how it works with a batch's shared
    negatives). The weight keeps its gradient through ``s_i`` as in the authors' code.
    A row's loss is the mean over its positives.

    Args:
      top_k: ``K`` (the authors: 20), an integer >= 1.
      weight_tau: ``tau_w`` > 0 (the authors search 0.5-3; 1 by default).
      scale: ``1 / tau`` on raw scores (the authors' setting: 5, i.e. tau = 0.2).
      num_items: the catalog size for the quantile estimate (None: the K-th largest
        candidate; :class:`~tfcro.models.TwoTowerModel` sets the catalog size).
      input_scale, reduction, name: as :class:`PSLLoss`.

    Example:
    >>> import tfcro, tensorflow as tf
    >>> loss = tfcro.SLatKLoss(top_k=1, weight_tau=1.0)
    >>> y_true = tf.constant([[1.0, 0.0, 0.0]])
    >>> y_pred = tf.constant([[0.9, 0.1, 0.5]])
    >>> round(float(loss(y_true, y_pred)), 4)  # sigmoid(0.9 - 0.9) * log(e^-0.8 + e^-0.4)
    0.0565

    Reference: W. Yang, J. Chen et al., "Breaking the Top-K Barrier: Advancing Top-K
    Ranking Metrics Optimization in Recommender Systems", KDD 2025 (code:
    Tiny-Snow/IR-Benchmark-SLatK, ``optimizer/optim_SLatK.py``).
    """

    default_name = "slatk_loss"

    def __init__(
        self,
        top_k: int = 20,
        weight_tau: float = 1.0,
        scale: float = 1.0,
        num_items: int | None = None,
        input_scale: float | None = None,
        reduction=keras.losses.Reduction.AUTO,
        name: str | None = None,
    ):
        super().__init__(scale, input_scale, reduction, name)
        if isinstance(top_k, float) and top_k.is_integer():  # e.g. 20.0 from a grid or YAML
            top_k = int(top_k)
        self.top_k = check_int("top_k", top_k, 1)
        self.weight_tau = check_float("weight_tau", weight_tau, minimum=0.0, strict=True)
        self.num_items = check_num_items(num_items)

    def call(self, y_true, y_pred):
        return functional.slatk_loss(
            y_true,
            y_pred,
            top_k=self.top_k,
            weight_tau=self.weight_tau,
            scale=self.scale,
            input_scale=self.input_scale or 1.0,
            num_items=self.num_items,
        )

    def get_config(self):
        config = super().get_config()
        config.update(top_k=self.top_k, weight_tau=self.weight_tau, num_items=self.num_items)
        return config


@register
class BSLLoss(RetrievalLoss):
    r"""Bilateral Softmax Loss (Wu et al., ICDE 2024): softmax with its own temperature
    on each side.

    ``loss = -log mean_{i in P} exp(z_i) + r * log sum_{j in J} exp(z_j / r)``,
    ``z = scale * s``, ``r`` = ``temperature_ratio`` = ``tau_2 / tau_1``: the
    paper's ``-s_i / tau_1 + (tau_2 / tau_1) log sum_j exp(s_j / tau_2)`` with
    ``scale = 1 / tau_1``. ``r > 1`` flattens the negatives' weights (robust to false
    negatives); the log-mean-exp over a row's positives (multi-hot rows) is the
    positive side's robustness: a low-scored, likely noisy positive weighs less.
    With one positive per row, ``r * logsumexp_j((z_j - z_i) / r)``; at ``r = 1`` it
    is the softmax loss without the positive in the denominator:
    ``exp(BSL) = exp(SoftmaxLoss) - 1``.

    Args:
      temperature_ratio: ``r = tau_2 / tau_1`` > 0 (the authors' Yelp2018 MF run:
        1.10 at ``tau_1`` 0.11).
      scale: ``1 / tau_1``.
      reduction, name: Keras.

    Example:
    >>> import tfcro, tensorflow as tf
    >>> loss = tfcro.BSLLoss(temperature_ratio=1.0)
    >>> y_true = tf.constant([[1.0, 0.0, 0.0]])
    >>> y_pred = tf.constant([[0.9, 0.1, 0.5]])
    >>> round(float(loss(y_true, y_pred)), 4)  # log(e^-0.8 + e^-0.4)
    0.113

    Reference: J. Wu, J. Chen et al., "BSL: Understanding and Improving Softmax Loss
    for Recommendation", ICDE 2024 (code: junkangwu/BSL; the formula as in
    Tiny-Snow/IR-Benchmark's ``optim_BSL.py``, plus the positive side over a row's
    positives as the authors' ``multi`` mode).
    """

    default_name = "bsl_loss"

    def __init__(
        self,
        temperature_ratio: float = 1.0,
        scale: float = 1.0,
        reduction=keras.losses.Reduction.AUTO,
        name: str | None = None,
    ):
        super().__init__(scale=scale, reduction=reduction, name=name)
        self.temperature_ratio = check_float(
            "temperature_ratio", temperature_ratio, minimum=0.0, strict=True
        )

    def call(self, y_true, y_pred):
        return functional.bsl_loss(y_true, y_pred, ratio=self.temperature_ratio, scale=self.scale)

    def get_config(self):
        config = super().get_config()
        config["temperature_ratio"] = self.temperature_ratio
        return config
