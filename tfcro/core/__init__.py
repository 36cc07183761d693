"""The loss math of tfcro, written once over an op namespace.

Nothing here imports TensorFlow, Keras or JAX at import time. Every function takes
``ops``, a namespace of tensor functions with one meaning across frameworks
(:mod:`tfcro.core.ops` lists them): :mod:`tfcro.core.tf_ops` (TensorFlow, behind
the Keras 2 losses of :mod:`tfcro.losses`) and :mod:`tfcro.core.keras_ops`
(``keras.ops``, behind the Keras 3 losses of :mod:`tfcro.keras3` on any backend).

- :mod:`~tfcro.core.kernels`: the comparison kernels ``phi``.
- :mod:`~tfcro.core.weighting`: CROLoss's power weighting ``F_alpha``.
- :mod:`~tfcro.core.ranking`: rank estimates and the masked log-sum-exp.
- :mod:`~tfcro.core.functional`: the per-positive and per-row losses.
- :mod:`~tfcro.core.engine`: the call contract (``[B, C]`` labels and scores, absent
  candidates, multi-hot rows) and the loops over further positives, one per backend.
- :mod:`~tfcro.core.definitions`: each loss's parameters, their checks and config,
  shared by the Keras 2 and Keras 3 classes.
- :mod:`~tfcro.core.sampling`: the logQ probability of a batch's candidates (plain
  arithmetic), shared by the Keras 2 and Keras 3 two-tower models.
"""
