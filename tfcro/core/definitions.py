r"""Each loss's parameters, checks, config and math, shared by the Keras 2 classes of
:mod:`tfcro.losses` and the Keras 3 classes of :mod:`tfcro.keras3`.

A definition is a mixin. The backend's base class (Keras 2's
:class:`tfcro.losses.RetrievalLoss`, Keras 3's :class:`tfcro.keras3.RetrievalLoss`)
adds the Keras ``Loss``, the op namespace ``ops``, the loop over further positives
``loop`` and the kernel serialisation ``saving``; its ``__init__`` hands the loss's
own arguments to :meth:`Definition.define`, which checks and stores them (the same
ValueErrors on both backends). ``call``, ``diagonal_call`` and ``get_config`` (Keras's
config plus :meth:`Definition.params`) are the definition's, on both backends.
The docstrings here are the losses' documentation on both backends; their examples
run against both (``CROLoss`` is ``tfcro.CROLoss`` or ``tfcro.keras3.CROLoss``).
"""

from __future__ import annotations

import inspect
from typing import Any

from tfcro.core import engine, functional
from tfcro.core import kernels as kernels_lib
from tfcro.validation import check_choice, check_float, check_int, is_integer


def check_num_items(value: Any) -> int | None:
    """``num_items`` is None (rank among the candidates) or a catalog size >= 1."""
    if value is None:
        return None
    whole = is_integer(value) or (isinstance(value, float) and value.is_integer())
    if not whole or value < 1:
        raise ValueError(
            "`num_items` should be None (rank among the sampled candidates) or the catalog "
            f"size, an integer >= 1. Received: num_items={value!r}"
        )
    return int(value)


def _check_input_scale(value: Any) -> float | None:
    if value is None:
        return None
    return check_float("input_scale", value, minimum=0.0, strict=True)


class Definition:
    """A loss over ``[B, C]`` score matrices with 0/1 labels, one row per query.

    Subclasses implement :meth:`positive_loss` (applied to every positive of every
    row by :func:`tfcro.core.engine.row_losses`) or override :meth:`row_losses`.

    Args:
      scale: multiplies every score difference (``rho`` of the paper; TFRS's
        ``temperature`` is ``1 / scale``). Must be > 0.
    """

    #: The loss's ``name`` when none is given.
    default_name = "retrieval_loss"
    #: Set by the backend's base class: the op namespace, the loop over further
    #: positives and the Keras serialisation functions.
    ops = None
    loop = None
    saving = None
    #: The backend's default ``reduction`` (for the signature shown by ``help``).
    default_reduction: Any = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # help(CROLoss) and inspect.signature show define's arguments plus Keras's own,
        # unless a subclass has an __init__ of its own (then that one's signature).
        if not getattr(cls.__init__, "passes_to_define", False):
            cls.__signature__ = None
            return
        own = list(inspect.signature(cls.define).parameters.values())[1:]
        keyword = inspect.Parameter.KEYWORD_ONLY
        cls.__signature__ = inspect.Signature(
            own
            + [
                inspect.Parameter("reduction", keyword, default=cls.default_reduction),
                inspect.Parameter("name", keyword, default=None),
            ]
        )

    def define(self, scale: float = 1.0) -> None:
        """Checks and stores the loss's arguments (subclasses: their own)."""
        self.scale = check_float("scale", scale, minimum=0.0, strict=True)

    def params(self) -> dict[str, Any]:
        """The arguments of :meth:`define`, as they go into the Keras config."""
        return {"scale": self.scale}

    def positive_loss(self, gaps, negatives, num_negatives):
        """``[B]`` loss of one positive per row from its scaled gaps ``[B, C]``."""
        raise NotImplementedError

    def row_losses(self, y_true, y_pred):
        """``[B]`` float32 row losses (the mean over each row's positives)."""
        return engine.row_losses(
            self.ops, y_true, y_pred, self.positive_loss, self.scale, type(self).loop
        )

    # The Keras side, the same on both faces (``super()`` is the backend's Keras ``Loss``).

    def call(self, y_true, y_pred):
        return self.row_losses(y_true, y_pred)

    def diagonal_row_losses(self, y_pred):
        """:meth:`row_losses` for labels ``eye(B, C)``, without the label matrix: one
        pass, one positive per row (:func:`tfcro.core.engine.diagonal_row_losses`).
        A definition that overrides :meth:`row_losses` overrides this too.
        """
        return engine.diagonal_row_losses(self.ops, y_pred, self.positive_loss, self.scale)

    def diagonal_call(self, y_pred):
        """``[B]`` row losses of ``y_pred [B, C]`` whose labels are ``eye(B, C)`` (a
        retrieval batch: row ``b``'s positive is column ``b``): the values of
        ``call(eye(B, C), y_pred)`` through :meth:`diagonal_row_losses`, or through
        :meth:`call` itself when a subclass overrides ``call``, or ``row_losses``
        below the class that wrote its diagonal form.
        """
        if self._has_diagonal_form():
            return self.diagonal_row_losses(y_pred)
        y_pred = self.ops.to_float32(y_pred)
        rows, columns = self.ops.shape(y_pred)
        return self.call(self.ops.eye(rows, columns), y_pred)

    @classmethod
    def _has_diagonal_form(cls) -> bool:
        def owner(name):
            return next(c for c in cls.__mro__ if name in vars(c))

        return owner("call") is Definition and owner("row_losses") is owner("diagonal_row_losses")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(self.params())
        return config

    def _kernel(self, identifier, parameter, allowed):
        return kernels_lib.get(
            identifier,
            saving=self.saving,
            margin=self.margin,
            parameter=parameter,
            allowed=allowed,
            serializable=True,
        )


class _RankWeighted(Definition):
    """CROLoss and its lambda method: ``alpha``, ``num_items``, ``margin`` and ``kernel``."""

    def define(
        self,
        kernel="softplus",
        alpha: float = 1.0,
        scale: float = 1.0,
        num_items: int | None = None,
        margin: float = 1.0,
    ) -> None:
        super().define(scale)
        self.alpha = check_float("alpha", alpha, minimum=0.0)
        self.num_items = check_num_items(num_items)
        self.margin = check_float("margin", margin, minimum=0.0)
        self.kernel = self._kernel(kernel, "kernel", kernels_lib.GRADIENT_KERNELS)

    def params(self):
        return {
            **super().params(),
            "kernel": kernels_lib.serialize(self.kernel, saving=self.saving),
            "alpha": self.alpha,
            "num_items": self.num_items,
            "margin": self.margin,
        }


class CRO(_RankWeighted):
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
        Keras-serialisable (see :mod:`tfcro.core.kernels`). Tune it with the rest:
        on a 38k-item catalog (Yelp2018, MF) ``"exponential"`` reached softmax's
        Recall@20 where ``"softplus"`` stayed 5% below (docs/benchmarks.md, "Why
        CROLoss trails here").
      alpha: weighting exponent, ``>= 0`` (paper: 0.6-1.6; 1.0 for Amazon Books).
      scale: multiplies score differences; 10 for the paper's cosine scores.
      num_items: catalog size ``N`` for the rank estimate; None ranks among the
        candidates of the batch (``N = M``).
      margin: the margin of a kernel given by the name ``"hinge"``, >= 0 (paper: 5 at
        scale 10); a shortcut for ``kernel=Hinge(margin)``.
      reduction: Keras reduction; ``"none"`` returns the ``[B]`` row losses.
      name: loss name.

    The exponential kernel with ``alpha < 1`` grows like
    ``exp((1 - alpha) * scale * gap)``: keep ``scale * |gap|`` below ~60 there
    (cosine scores with scale 10 are far inside that).

    Example:
    >>> loss = CROLoss(kernel="softplus", alpha=1.0)
    >>> round(float(loss([[1.0, 0.0, 0.0]], [[0.9, 0.1, 0.5]])), 4)
    0.6335

    (``log(1 + softplus(-0.8) + softplus(-0.4))``.) In a model:
    ``model.compile(optimizer="adam", loss=CROLoss(alpha=1.2))``; with TFRS:
    ``tfrs.tasks.Retrieval(loss=tfcro.CROLoss(num_items=n))`` (pass
    ``reduction="sum"`` there, as TFRS's own default loss does).

    Reference: Y. Tang, W. Bai et al., "CROLoss: Towards a Customizable Loss for
    Retrieval Models in Recommender Systems", CIKM 2022, arXiv:2208.02971.
    """

    default_name = "cro_loss"

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.cro_positive_loss(
            self.ops,
            gaps,
            negatives,
            num_negatives,
            kernel=self.kernel,
            alpha=self.alpha,
            num_items=self.num_items,
        )


class LambdaCRO(_RankWeighted):
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
    >>> loss = LambdaCROLoss("sigmoid", "softplus", alpha=1.0)
    >>> round(float(loss([[1.0, 0.0, 0.0]], [[0.9, 0.1, 0.5]])), 4)
    1.101

    (``r_hat_2 / r_hat_1 = 1.884 / 1.711``.)

    Reference: Y. Tang, W. Bai et al., CIKM 2022, arXiv:2208.02971.
    """

    default_name = "lambda_cro_loss"

    def define(
        self,
        weight_kernel="sigmoid",
        kernel="softplus",
        alpha: float = 1.0,
        scale: float = 1.0,
        num_items: int | None = None,
        margin: float = 1.0,
    ) -> None:
        super().define(kernel, alpha, scale, num_items, margin)
        self.weight_kernel = self._kernel(weight_kernel, "weight_kernel", allowed=None)

    def params(self):
        weight_kernel = kernels_lib.serialize(self.weight_kernel, saving=self.saving)
        return {**super().params(), "weight_kernel": weight_kernel}

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.lambda_cro_positive_loss(
            self.ops,
            gaps,
            negatives,
            num_negatives,
            weight_kernel=self.weight_kernel,
            kernel=self.kernel,
            alpha=self.alpha,
            num_items=self.num_items,
        )


class Softmax(Definition):
    r"""Sampled softmax cross-entropy, per positive.

    ``loss_i = -log( exp(scale s_i) / (exp(scale s_i) + sum_{j in J} exp(scale s_j)) )``
    ``= log(1 + sum_j exp(scale (s_j - s_i)))``, averaged over a row's positives
    (other positives of the row are not in the denominator). With one positive
    per row it equals ``CategoricalCrossentropy(from_logits=True)`` of
    ``scale * y_pred``, the default loss of ``tfrs.tasks.Retrieval``. It is
    CROLoss with the exponential kernel at ``alpha=1``.

    Example:
    >>> loss = SoftmaxLoss(scale=10.0)
    >>> round(float(loss([[1.0, 0.0]], [[0.5, 0.4]])), 4)
    0.3133
    """

    default_name = "softmax_loss"

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.softmax_positive_loss(self.ops, gaps, negatives, num_negatives)

    def row_losses(self, y_true, y_pred):
        if type(self).positive_loss is not Softmax.positive_loss:
            return super().row_losses(y_true, y_pred)  # a subclass's own per-positive loss
        return functional.softmax_loss(self.ops, y_true, y_pred, self.scale)

    def diagonal_row_losses(self, y_pred):
        if type(self).positive_loss is not Softmax.positive_loss:
            return super().diagonal_row_losses(y_pred)
        return functional.softmax_diagonal_loss(self.ops, y_pred, self.scale)


class BPR(Definition):
    r"""Bayesian Personalized Ranking (Rendle et al., UAI 2009).

    ``loss_i = mean_{j in J} -log sigmoid(scale (s_i - s_j))``; CROLoss with the
    softplus kernel at ``alpha=0`` is ``log(M + 1)`` times this loss.

    Example:
    >>> loss = BPRLoss()
    >>> round(float(loss([[1.0, 0.0]], [[1.0, 0.0]])), 4)
    0.3133
    """

    default_name = "bpr_loss"

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.bpr_positive_loss(self.ops, gaps, negatives, num_negatives)


class Triplet(Definition):
    r"""Triplet (margin) loss (Schroff et al., CVPR 2015).

    ``loss_i = mean_{j in J} max(0, scale (s_j - s_i) + margin)``; CROLoss with
    the hinge kernel at ``alpha=0`` is ``log(M + 1)`` times this loss.

    Example:
    >>> loss = TripletLoss(margin=1.0)
    >>> round(float(loss([[1.0, 0.0]], [[0.8, 0.5]])), 4)
    0.7
    """

    default_name = "triplet_loss"

    def define(self, scale: float = 1.0, margin: float = 1.0) -> None:
        super().define(scale)
        self.margin = check_float("margin", margin, minimum=0.0)

    def params(self):
        return {**super().params(), "margin": self.margin}

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.triplet_positive_loss(
            self.ops, gaps, negatives, num_negatives, margin=self.margin
        )


# ----------------------------------------------------------------------------- peer losses
# PSL, SL@K and BSL: the recall-oriented softmax variants beside CROLoss. A positive
# without any negative adds 0 (and no NaN gradient).
#
# Temperatures. The papers write their losses on raw scores ``s`` (cosines) with a
# softmax temperature ``tau``; here ``scale`` is ``1 / tau`` as for the other losses.
# Inside :class:`~tfcro.models.TwoTowerModel` the model has already multiplied the
# scores by its own ``scale`` (and the loss keeps ``scale=1``); PSL's and SL@K's other
# temperatures are in raw-score units, so those losses take ``input_scale``, the factor
# already applied to their inputs (``None``: 1, and the model sets its score scale
# there), and their total ``1 / tau`` is ``scale * input_scale``.


class _RawScore(Definition):
    """A loss with temperatures on raw scores: ``input_scale`` and the total ``outer``."""

    def define(self, scale: float = 1.0, input_scale: float | None = None) -> None:
        super().define(scale)
        self.input_scale = _check_input_scale(input_scale)

    @property
    def outer(self) -> float:
        """``1 / tau`` of the raw scores: ``scale * input_scale``."""
        return self.scale * (self.input_scale or 1.0)

    def params(self):
        return {**super().params(), "input_scale": self.input_scale}


class PSL(_RawScore):
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
    >>> loss = PSLLoss(scale=1.0, surrogate_tau=2.0)
    >>> round(float(loss([[1.0, 0.0, 0.0]], [[0.9, 0.1, 0.5]])), 4)
    0.3525

    (``log((1 + tanh(-0.4)) + (1 + tanh(-0.2)))``.)

    Reference: W. Yang, J. Chen et al., "PSL: Rethinking and Improving Softmax Loss
    from Pairwise Perspective for Recommendation", NeurIPS 2024 (code:
    Tiny-Snow/IR-Benchmark, ``optimizer/optim_PSL.py``).
    """

    default_name = "psl_loss"

    def define(
        self,
        surrogate: str = "tanh",
        surrogate_tau: float = 2.0,
        scale: float = 1.0,
        input_scale: float | None = None,
    ) -> None:
        super().define(scale, input_scale)
        self.surrogate = check_choice("surrogate", surrogate, functional.PSL_SURROGATES)
        self.surrogate_tau = check_float("surrogate_tau", surrogate_tau, minimum=0.0, strict=True)

    def params(self):
        return {
            **super().params(),
            "surrogate": self.surrogate,
            "surrogate_tau": self.surrogate_tau,
        }

    def positive_loss(self, gaps, negatives, num_negatives):
        return functional.psl_positive_loss(
            self.ops,
            gaps,
            negatives,
            num_negatives,
            surrogate=self.surrogate,
            tau=self.surrogate_tau,
            outer=self.outer,
        )


class SLatK(_RawScore):
    r"""Softmax Loss @K (Yang et al., KDD 2025): softmax weighted by "is the positive in
    the top K?".

    ``loss_i = sigmoid((s_i - beta^K) / tau_w) * logsumexp_{j in J} (s_j - s_i) / tau``

    with ``1 / tau = scale * input_scale``, ``tau_w`` = ``weight_tau`` (raw-score
    units) and ``beta^K`` the score of the user's ``K``-th best item, estimated
    without gradient from the row's candidates
    (:func:`tfcro.core.functional.topk_quantile_score`): their ``K``-th largest score
    (``num_items=None``, the authors' estimate from the user's positives and sampled
    negatives), or, with the catalog size ``N``, their ``ceil(K * C / N)``-th largest
    of ``C`` (the same quantile of a uniform sample: this is how it works with a
    batch's shared negatives). The weight keeps its gradient through ``s_i`` as in the
    authors' code. A row's loss is the mean over its positives.

    Args:
      top_k: ``K`` (the authors: 20), an integer >= 1.
      weight_tau: ``tau_w`` > 0 (the authors search 0.5-3; 1 by default). Tune it: on
        cosine scores, 3 did far better than 1 in our MF runs (docs/benchmarks.md,
        "Leaderboard").
      scale: ``1 / tau`` on raw scores (the authors' setting: 5, i.e. tau = 0.2).
      num_items: the catalog size for the quantile estimate (None: the K-th largest
        candidate; :class:`~tfcro.models.TwoTowerModel` sets the catalog size).
      input_scale, reduction, name: as :class:`PSLLoss`.

    Example:
    >>> loss = SLatKLoss(top_k=1, weight_tau=1.0)
    >>> round(float(loss([[1.0, 0.0, 0.0]], [[0.9, 0.1, 0.5]])), 4)
    0.0565

    (``sigmoid(0.9 - 0.9) * log(e^-0.8 + e^-0.4)``.)

    Reference: W. Yang, J. Chen et al., "Breaking the Top-K Barrier: Advancing Top-K
    Ranking Metrics Optimization in Recommender Systems", KDD 2025 (code:
    Tiny-Snow/IR-Benchmark-SLatK, ``optimizer/optim_SLatK.py``).
    """

    default_name = "slatk_loss"

    def define(
        self,
        top_k: int = 20,
        weight_tau: float = 1.0,
        scale: float = 1.0,
        num_items: int | None = None,
        input_scale: float | None = None,
    ) -> None:
        super().define(scale, input_scale)
        if isinstance(top_k, float) and top_k.is_integer():  # e.g. 20.0 from a grid or YAML
            top_k = int(top_k)
        self.top_k = check_int("top_k", top_k, 1)
        self.weight_tau = check_float("weight_tau", weight_tau, minimum=0.0, strict=True)
        self.num_items = check_num_items(num_items)

    def params(self):
        return {
            **super().params(),
            "top_k": self.top_k,
            "weight_tau": self.weight_tau,
            "num_items": self.num_items,
        }

    def _math_options(self):
        return {
            "top_k": self.top_k,
            "weight_tau": self.weight_tau,
            "scale": self.scale,
            "input_scale": self.input_scale or 1.0,
            "num_items": self.num_items,
        }

    def row_losses(self, y_true, y_pred):
        return functional.slatk_loss(self.ops, y_true, y_pred, **self._math_options())

    def diagonal_row_losses(self, y_pred):
        return functional.slatk_diagonal_loss(self.ops, y_pred, **self._math_options())


class BSL(Definition):
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
    >>> loss = BSLLoss(temperature_ratio=1.0)
    >>> round(float(loss([[1.0, 0.0, 0.0]], [[0.9, 0.1, 0.5]])), 4)
    0.113

    (``log(e^-0.8 + e^-0.4)``.)

    Reference: J. Wu, J. Chen et al., "BSL: Understanding and Improving Softmax Loss
    for Recommendation", ICDE 2024 (code: junkangwu/BSL; the formula as in
    Tiny-Snow/IR-Benchmark's ``optim_BSL.py``, plus the positive side over a row's
    positives as the authors' ``multi`` mode).
    """

    default_name = "bsl_loss"

    def define(self, temperature_ratio: float = 1.0, scale: float = 1.0) -> None:
        super().define(scale)
        self.temperature_ratio = check_float(
            "temperature_ratio", temperature_ratio, minimum=0.0, strict=True
        )

    def params(self):
        return {**super().params(), "temperature_ratio": self.temperature_ratio}

    def row_losses(self, y_true, y_pred):
        return functional.bsl_loss(
            self.ops, y_true, y_pred, ratio=self.temperature_ratio, scale=self.scale
        )

    def diagonal_row_losses(self, y_pred):
        return functional.bsl_diagonal_loss(
            self.ops, y_pred, ratio=self.temperature_ratio, scale=self.scale
        )


#: The definitions by the names of ``tfcro.losses.get`` and ``pipelines.train --loss``,
#: with the class name each backend gives them.
BY_NAME: dict[str, type[Definition]] = {
    "softmax": Softmax,
    "bpr": BPR,
    "triplet": Triplet,
    "cro": CRO,
    "cro-lambda": LambdaCRO,
    "psl": PSL,
    "sl-at-k": SLatK,
    "bsl": BSL,
}
CLASS_NAMES: dict[str, str] = {
    "softmax": "SoftmaxLoss",
    "bpr": "BPRLoss",
    "triplet": "TripletLoss",
    "cro": "CROLoss",
    "cro-lambda": "LambdaCROLoss",
    "psl": "PSLLoss",
    "sl-at-k": "SLatKLoss",
    "bsl": "BSLLoss",
}
#: The options each loss takes (its ``define`` arguments), for factories by name.
OPTIONS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(cls.define).parameters)[1:] for name, cls in BY_NAME.items()
}


def build(classes: dict, name: str, **options: Any):
    """``classes[name](**options)`` with the options that loss takes (others and None are
    dropped): the factory by name behind ``tfcro.losses.get`` and ``tfcro.keras3.get``.
    """
    if name not in classes:
        raise ValueError(f"`loss` should be one of {list(classes)}. Received: loss={name!r}")
    kwargs = {k: v for k, v in options.items() if k in OPTIONS[name] and v is not None}
    return classes[name](**kwargs)


def for_model(config: dict[str, Any], num_items: int, score_scale: float) -> dict[str, Any]:
    """A loss config as a retrieval model uses it: ``num_items=None`` set to the catalog
    size, ``input_scale=None`` (losses with temperatures on raw scores) to the model's
    score scale. Other configs (any Keras loss) come back unchanged.
    """
    config = dict(config)
    if "num_items" in config and config["num_items"] is None:
        config["num_items"] = int(num_items)
    if "input_scale" in config and config["input_scale"] is None:
        config["input_scale"] = float(score_scale)
    return config
