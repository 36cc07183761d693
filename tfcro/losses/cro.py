"""CROLoss and its lambda method as Keras losses."""

from __future__ import annotations

from tfcro._compat import keras, register
from tfcro.losses import functional
from tfcro.losses import kernels as kernels_lib
from tfcro.losses.base import RetrievalLoss, check_num_items
from tfcro.validation import check_float


class _RankWeightedLoss(RetrievalLoss):
    """CROLoss and its lambda method: ``alpha``, ``num_items``, ``margin`` and ``kernel``."""

    def __init__(
        self,
        kernel="softplus",
        alpha: float = 1.0,
        scale: float = 1.0,
        num_items: int | None = None,
        margin: float = 1.0,
        reduction=keras.losses.Reduction.AUTO,
        name: str | None = None,
    ):
        super().__init__(scale=scale, reduction=reduction, name=name)
        self.alpha = check_float("alpha", alpha, minimum=0.0)
        self.num_items = check_num_items(num_items)
        self.margin = check_float("margin", margin, minimum=0.0)
        self.kernel = self._kernel(kernel, "kernel", kernels_lib.GRADIENT_KERNELS)

    def _options(self) -> dict:
        """The keyword arguments of the pure per-positive losses."""
        return {"kernel": self.kernel, "alpha": self.alpha, "num_items": self.num_items}

    def _kernel(self, identifier, parameter, allowed):
        return kernels_lib.get(
            identifier, margin=self.margin, parameter=parameter, allowed=allowed, serializable=True
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel=kernels_lib.serialize(self.kernel),
            alpha=self.alpha,
            num_items=self.num_items,
            margin=self.margin,
        )
        return config


@register
class CROLoss(_RankWeightedLoss):
    r"""Customizable Recall@N Optimization Loss (Tang, Bai et al., CIKM 2022).

    For each positive ``i`` of a row, with negatives ``J`` (the row's columns
    with ``y_true == 0``, ``M = |J|``), catalog size ``N`` and ``R = N / M``:

    ``r_hat = 1 + R * sum_{j in J} phi(scale * (s_j - s_i))``  (smoothed rank)

    ``loss_i = F_alpha(r_hat)``, with ``F_1(x) = log(x)`` and otherwise
    ``F_alpha(x) = c_alpha * (x^(1 - alpha) - 1) / (1 - alpha)``,
    ``c_alpha = (1 - alpha) log(N + 1) / ((N + 1)^(1 - alpha) - 1)``.

    $$\mathcal{L} = \frac{1}{|P|}\sum_{i \in P} F_\alpha\Big(1 + \tfrac{N}{M}
    \sum_{j \in J} \phi(\rho (s_j - s_i))\Big)$$

    A row's loss is the mean over its positives. Larger ``alpha`` weights the
    top of the ranking (small N), smaller ``alpha`` the tail (large N). With
    ``num_items=None`` (``N = M``) and one positive per row, ``exponential`` at
    ``alpha=1`` is softmax cross-entropy of ``scale * y_pred``, ``softplus`` at
    ``alpha=0`` is ``log(M + 1)`` times BPR and ``hinge`` at ``alpha=0`` is
    ``log(M + 1)`` times the triplet loss.

    Args:
      kernel: comparison kernel ``phi``: ``"sigmoid"``, ``"softplus"``,
        ``"exponential"``, ``"hinge"``, a :class:`tfcro.kernels.Kernel` such as
        ``Hinge(5.0)``, or a callable ``phi(x)``; custom kernels must be
        Keras-serialisable (see :mod:`tfcro.kernels`).
      alpha: weighting exponent, ``>= 0`` (paper: 0.6-1.6; 1.0 for Amazon Books).
      scale: multiplies score differences; 10 for the paper's cosine scores.
      num_items: catalog size ``N`` for the rank estimate; None ranks among the
        candidates of the batch (``N = M``).
      margin: the margin of a kernel given by the name ``"hinge"``, >= 0 (paper: 5 at
        scale 10); a shortcut for ``kernel=tfcro.kernels.Hinge(margin)``.
      reduction: Keras reduction; ``"none"`` returns the ``[B]`` row losses.
      name: loss name.

    The exponential kernel with ``alpha < 1`` grows like
    ``exp((1 - alpha) * scale * gap)``: keep ``scale * |gap|`` below ~60 there
    (cosine scores with scale 10 are far inside that).

    Example:
    >>> import tfcro, tensorflow as tf
    >>> loss = tfcro.CROLoss(kernel="softplus", alpha=1.0)
    >>> y_true = tf.constant([[1.0, 0.0, 0.0]])
    >>> y_pred = tf.constant([[0.9, 0.1, 0.5]])
    >>> round(float(loss(y_true, y_pred)), 4)  # log(1 + softplus(-0.8) + softplus(-0.4))
    0.6335

    In a model: ``model.compile(optimizer="adam", loss=tfcro.CROLoss(alpha=1.2))``,
    or with TFRS: ``tfrs.tasks.Retrieval(loss=tfcro.CROLoss(num_items=n))``
    (pass ``reduction="sum"`` there, as TFRS's own default loss does).

    Reference: Y. Tang, W. Bai et al., "CROLoss: Towards a Customizable Loss for
    Retrieval Models in Recommender Systems", CIKM 2022, arXiv:2208.02971.
    """

    default_name = "cro_loss"

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.cro_positive_loss(gaps, negatives, num_negatives, **self._options())


@register
class LambdaCROLoss(_RankWeightedLoss):
    r"""CROLoss trained with the lambda method (paper section 3.4, eq. 20-23).

    The kernel of CROLoss plays two roles in its gradient
    ``dL/dd_j = w(r_hat) * R * phi'(d_j)``: it estimates the rank inside the
    weight ``w`` and it pushes each gap ``d_j``. The lambda method gives each
    role its own kernel: ``weight_kernel`` ``phi_1`` estimates ``r_hat_1``,
    ``kernel`` ``phi_2`` gives ``r_hat_2``, and

    ``loss_i = stop_gradient(w(r_hat_1)) * r_hat_2``,
    ``w(x) = c_alpha * x^(-alpha)``

    so the gradient is ``w(r_hat_1) * R * phi_2'(d_j)``. The loss value is a
    surrogate whose gradient matters, not a rank statistic.

    Args:
      weight_kernel: ``"unit_step"`` (exact rank), ``"sigmoid"`` or any
        kernel of :class:`CROLoss`.
      kernel: the gradient kernel: ``"softplus"``, ``"exponential"``,
        ``"hinge"``, ``"sigmoid"`` or a callable.
      alpha, scale, num_items, margin, reduction, name: as :class:`CROLoss`.

    The paper's best settings: Amazon Books ``sigmoid``/``softplus`` at
    ``alpha=1.0``; Taobao ``sigmoid``/``exponential`` at ``alpha=1.4``. With
    the exponential gradient kernel keep ``scale * |gap|`` below ~60.

    Example:
    >>> import tfcro, tensorflow as tf
    >>> loss = tfcro.LambdaCROLoss("sigmoid", "softplus", alpha=1.0)
    >>> y_true = tf.constant([[1.0, 0.0, 0.0]])
    >>> y_pred = tf.constant([[0.9, 0.1, 0.5]])
    >>> round(float(loss(y_true, y_pred)), 4)  # r_hat_2 / r_hat_1 = 1.884 / 1.711
    1.101

    Reference: Y. Tang, W. Bai et al., CIKM 2022, arXiv:2208.02971.
    """

    default_name = "lambda_cro_loss"

    def __init__(
        self,
        weight_kernel="sigmoid",
        kernel="softplus",
        alpha: float = 1.0,
        scale: float = 1.0,
        num_items: int | None = None,
        margin: float = 1.0,
        reduction=keras.losses.Reduction.AUTO,
        name: str | None = None,
    ):
        super().__init__(kernel, alpha, scale, num_items, margin, reduction, name)
        self.weight_kernel = self._kernel(weight_kernel, "weight_kernel", allowed=None)

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.lambda_cro_positive_loss(
            gaps, negatives, num_negatives, weight_kernel=self.weight_kernel, **self._options()
        )

    def get_config(self):
        config = super().get_config()
        config["weight_kernel"] = kernels_lib.serialize(self.weight_kernel)
        return config
