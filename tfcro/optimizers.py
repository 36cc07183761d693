"""Optimizers for embedding-heavy retrieval models.

Keras's ``Adam`` updates an embedding table densely even when its gradient is
sparse (``tf.IndexedSlices`` from a lookup): every step decays the first and
second moments of *every* row and moves every row, so a step costs three passes
over each table whatever the batch touched. :class:`LazyAdam` updates only the
rows in the batch (the "lazy" Adam of TensorFlow Addons and of most large-scale
recommender trainers); dense gradients (Dense layers) get the usual Adam update.
"""

from __future__ import annotations

from tfcro._compat import keras, register, tf


@register
class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse (embedding) updates touch only the rows of the batch.

    For a sparse gradient with rows ``r`` (duplicates summed first):
    ``m[r] = b1 m[r] + (1 - b1) g``, ``v[r] = b2 v[r] + (1 - b2) g^2``,
    ``w[r] -= lr sqrt(1 - b2^t) / (1 - b1^t) * m[r] / (sqrt(v[r]) + eps)``; the
    other rows, their moments included, are left as they are (Adam would decay the
    moments of every row and keep moving rows the batch did not touch). Dense
    gradients are updated as by :class:`tf.keras.optimizers.Adam`. Takes Adam's
    arguments; ``amsgrad`` is not supported.

    Example:
        >>> model.compile(optimizer=tfcro.optimizers.LazyAdam(1e-3))  # doctest: +SKIP
    """

    def __init__(self, learning_rate=0.001, *args, name: str = "LazyAdam", **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError("`amsgrad` should be False for LazyAdam. Received: amsgrad=True")
        super().__init__(learning_rate, *args, name=name, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = (
            tf.cast(self.learning_rate, dtype)
            * tf.sqrt(1 - tf.pow(beta_2, step))
            / (1 - tf.pow(beta_1, step))
        )
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        step_rows = alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        variable.scatter_sub(tf.IndexedSlices(step_rows, rows))


__all__ = ["LazyAdam"]
