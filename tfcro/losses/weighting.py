"""The power weighting of CROLoss with TensorFlow (``tfcro.weighting``): the functions of
:mod:`tfcro.core.weighting` with the op namespace bound to :mod:`tfcro.core.tf_ops`.
"""

from tfcro._compat import tf  # noqa: F401  (TensorFlow with Keras 2 first)
from tfcro.core import tf_ops
from tfcro.core import weighting as _core
from tfcro.core.ops import bind

weight_constant = bind(tf_ops, _core.weight_constant)
transform = bind(tf_ops, _core.transform)
log_weight = bind(tf_ops, _core.log_weight)

__all__ = ["weight_constant", "transform", "log_weight"]
