"""Baseline losses under the same call contract as CROLoss."""

from __future__ import annotations

from tfcro._compat import keras, register
from tfcro.losses import functional
from tfcro.losses.base import RetrievalLoss
from tfcro.validation import check_float


@register
class SoftmaxLoss(RetrievalLoss):
    r"""Sampled softmax cross-entropy, per positive.

    ``loss_i = -log( exp(scale s_i) / (exp(scale s_i) + sum_{j in J} exp(scale s_j)) )``
    ``= log(1 + sum_j exp(scale (s_j - s_i)))``, averaged over a row's positives
    (other positives of the row are not in the denominator). With one positive
    per row it equals ``tf.keras.losses.CategoricalCrossentropy(from_logits=True)``
    of ``scale * y_pred``, the default loss of ``tfrs.tasks.Retrieval``. It is
    CROLoss with the exponential kernel at ``alpha=1``.

    Example:
    >>> import tfcro, tensorflow as tf
    >>> loss = tfcro.SoftmaxLoss(scale=10.0)
    >>> round(float(loss(tf.constant([[1.0, 0.0]]), tf.constant([[0.5, 0.4]]))), 4)
    0.3133
    """

    default_name = "softmax_loss"
    positive_loss = staticmethod(functional.softmax_positive_loss)

    def call(self, y_true, y_pred):
        return functional.softmax_loss(y_true, y_pred, self.scale)  # all positives at once

    def diagonal_call(self, y_pred):
        if type(self).call is not SoftmaxLoss.call:  # a subclass's own `call` is honoured
            return super().diagonal_call(y_pred)
        return functional.softmax_diagonal_loss(y_pred, self.scale)


@register
class BPRLoss(RetrievalLoss):
    r"""Bayesian Personalized Ranking (Rendle et al., UAI 2009).

    ``loss_i = mean_{j in J} -log sigmoid(scale (s_i - s_j))``; CROLoss with the
    softplus kernel at ``alpha=0`` is ``log(M + 1)`` times this loss.

    Example:
    >>> import tfcro, tensorflow as tf
    >>> loss = tfcro.BPRLoss()
    >>> round(float(loss(tf.constant([[1.0, 0.0]]), tf.constant([[1.0, 0.0]]))), 4)
    0.3133
    """

    default_name = "bpr_loss"
    positive_loss = staticmethod(functional.bpr_positive_loss)


@register
class TripletLoss(RetrievalLoss):
    r"""Triplet (margin) loss (Schroff et al., CVPR 2015).

    ``loss_i = mean_{j in J} max(0, scale (s_j - s_i) + margin)``; CROLoss with
    the hinge kernel at ``alpha=0`` is ``log(M + 1)`` times this loss.

    Example:
    >>> import tfcro, tensorflow as tf
    >>> loss = tfcro.TripletLoss(margin=1.0)
    >>> round(float(loss(tf.constant([[1.0, 0.0]]), tf.constant([[0.8, 0.5]]))), 4)
    0.7
    """

    default_name = "triplet_loss"

    def __init__(
        self,
        scale: float = 1.0,
        margin: float = 1.0,
        reduction=keras.losses.Reduction.AUTO,
        name: str | None = None,
    ):
        super().__init__(scale=scale, reduction=reduction, name=name)
        self.margin = check_float("margin", margin, minimum=0.0)

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.triplet_positive_loss(gaps, negatives, num_negatives, margin=self.margin)

    def get_config(self):
        config = super().get_config()
        config["margin"] = self.margin
        return config
