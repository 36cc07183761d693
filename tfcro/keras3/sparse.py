"""Lazy (row-sparse) Adam steps for embedding tables on the JAX backend.

``jax.grad`` of an embedding lookup is a dense ``[rows, D]`` table, and Keras's Adam
then decays both moments of every row and moves every row: three passes over each
table per step whatever the batch touched. For matrix factorisation on a CPU those
passes cost more than the loss (docs/benchmarks.md, "Keras 3 on a CPU: lazy Adam").
:func:`train_step` instead differentiates the loss with respect to the rows the
batch gathered and updates only those rows (:func:`lazy_adam_rows`): the "lazy" Adam
of TensorFlow Addons and of :class:`tfcro.optimizers.LazyAdam` (the Keras 2 trainer's
``lazy_adam``), the moments of a row the batch does not touch are left as they are.
Used by :class:`tfcro.keras3.TwoTowerRetrieval` with ``sparse_updates=True``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from keras import StatelessScope
from keras.utils import unpack_x_y_sample_weight


def lazy_adam_rows(table, m, v, ids, grads, alpha, beta_1, beta_2, epsilon):
    """One lazy Adam step of ``table`` on the rows ``ids`` (any shape, duplicates
    allowed) with row gradients ``grads`` (``ids.shape + [D]``).

    Duplicates' gradients are summed first (as the dense gradient of a lookup sums
    them); then, for each distinct row ``r``: ``m[r] += (g - m[r]) (1 - beta_1)``,
    ``v[r] += (g^2 - v[r]) (1 - beta_2)``, ``table[r] -= alpha m[r] / (sqrt(v[r]) +
    epsilon)`` (Keras's Adam update, with ``alpha = lr sqrt(1 - beta_2^t) /
    (1 - beta_1^t)`` computed by the caller). Other rows are returned unchanged.
    Returns ``(table, m, v)``; jit-safe (``ids``'s size is static). With fewer ids than
    rows it sorts the ids and writes the distinct rows; with as many or more (per-row
    negatives) it makes one masked pass over the table instead, which is cheaper then.
    """
    table, m, v = jnp.asarray(table), jnp.asarray(m), jnp.asarray(v)
    ids = jnp.reshape(jnp.asarray(ids), (-1,))
    grads = jnp.reshape(grads, (ids.shape[0], table.shape[1])).astype(table.dtype)
    rows = table.shape[0]
    if ids.shape[0] >= rows:
        # more ids than rows (e.g. per-row negatives): one pass over the table costs less
        # than sorting the ids; the same update, masked to the touched rows
        g = jax.ops.segment_sum(grads, ids, num_segments=rows)  # out-of-range ids dropped
        touched = jax.ops.segment_sum(jnp.ones(ids.shape, "int32"), ids, num_segments=rows)
        touched = (touched > 0)[:, None]
        m_new = jnp.where(touched, m + (g - m) * (1 - beta_1), m)
        v_new = jnp.where(touched, v + (jnp.square(g) - v) * (1 - beta_2), v)
        step = m_new * alpha / (jnp.sqrt(v_new) + epsilon)
        return jnp.where(touched, table - step, table), m_new, v_new
    # distinct rows padded with an out-of-range id, whose updates are dropped below
    distinct, position = jnp.unique(ids, size=ids.shape[0], fill_value=rows, return_inverse=True)
    g = jax.ops.segment_sum(grads, jnp.reshape(position, (-1,)), num_segments=ids.shape[0])
    safe = jnp.minimum(distinct, rows - 1)
    m_rows = m[safe] + (g - m[safe]) * (1 - beta_1)
    v_rows = v[safe] + (jnp.square(g) - v[safe]) * (1 - beta_2)
    new_rows = table[safe] - m_rows * alpha / (jnp.sqrt(v_rows) + epsilon)
    return (
        table.at[distinct].set(new_rows, mode="drop"),
        m.at[distinct].set(m_rows, mode="drop"),
        v.at[distinct].set(v_rows, mode="drop"),
    )


def check_optimizer(optimizer) -> None:
    """ValueError unless ``optimizer`` is a plain ``keras.optimizers.Adam`` (what the
    lazy step reproduces: no amsgrad, weight decay, clipping, EMA, accumulation or
    loss scale factor).
    """
    import keras

    if type(optimizer) is not keras.optimizers.Adam:
        raise ValueError(
            "`sparse_updates=True` needs `optimizer=keras.optimizers.Adam(...)` (the lazy "
            f"step is Adam's). Received: optimizer={optimizer!r}"
        )
    unsupported = {
        "amsgrad": optimizer.amsgrad,
        "weight_decay": optimizer.weight_decay,
        "clipnorm": optimizer.clipnorm,
        "clipvalue": optimizer.clipvalue,
        "global_clipnorm": optimizer.global_clipnorm,
        "use_ema": optimizer.use_ema,
        "gradient_accumulation_steps": optimizer.gradient_accumulation_steps,
        "loss_scale_factor": optimizer.loss_scale_factor,
    }
    for name, value in unsupported.items():
        if value:
            raise ValueError(
                f"`sparse_updates=True` supports Adam without `{name}`. Received: {name}={value!r}"
            )


def train_step(model, state, data):
    """The JAX trainer's ``train_step`` for ``model`` (a ``TwoTowerRetrieval``) with lazy
    Adam updates of its two embedding tables: the same draws (negatives, dropout), loss
    and gradients as the dense step, applied to the gathered rows only.
    """
    trainable, non_trainable, optimizer_values, metrics_values = state
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    user_var, item_var = model.user_embedding.embeddings, model.item_embedding.embeddings
    position = {id(variable): i for i, variable in enumerate(model.trainable_variables)}
    user_table, item_table = trainable[position[id(user_var)]], trainable[position[id(item_var)]]
    nt_mapping = list(zip(model.non_trainable_variables, non_trainable, strict=True))

    with StatelessScope(state_mapping=nt_mapping) as scope:
        users, candidates, row_ids = model._draw(x, y)
    non_trainable = _current(scope, model.non_trainable_variables, non_trainable)
    item_ids = (
        candidates
        if row_ids is None
        else jnp.concatenate([candidates, jnp.reshape(row_ids, (-1,))])
    )

    def loss_fn(user_rows, item_rows, non_trainable):
        mapping = list(zip(model.non_trainable_variables, non_trainable, strict=True))
        with StatelessScope(state_mapping=mapping) as scope:
            raw_items = item_rows[: candidates.shape[0]]
            raw_rows = None
            if row_ids is not None:
                raw_rows = jnp.reshape(item_rows[candidates.shape[0] :], (*row_ids.shape, -1))
            queries = model.query_from_rows(user_rows, training=True)
            loss = model._loss_from_rows(
                queries, user_rows, raw_items, raw_rows, candidates, row_ids, sample_weight
            )
        return loss, (queries, _current(scope, model.non_trainable_variables, non_trainable))

    (loss, (queries, non_trainable)), (user_grads, item_grads) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True
    )(_gather(user_table, users), _gather(item_table, item_ids), non_trainable)

    optimizer = model.optimizer
    slots = {id(variable): i for i, variable in enumerate(optimizer.variables)}
    optimizer_values = list(optimizer_values)
    trainable = list(trainable)
    mapping = list(zip(optimizer.variables, optimizer_values, strict=True))
    with StatelessScope(state_mapping=mapping):
        learning_rate = jnp.asarray(optimizer.learning_rate, user_table.dtype)
        step = jnp.asarray(optimizer.iterations, user_table.dtype) + 1
    alpha = (
        learning_rate
        * jnp.sqrt(1 - jnp.power(optimizer.beta_2, step))
        / (1 - jnp.power(optimizer.beta_1, step))
    )
    for variable, ids, grads in ((user_var, users, user_grads), (item_var, item_ids, item_grads)):
        index = optimizer._get_variable_index(variable)
        m_slot = slots[id(optimizer._momentums[index])]
        v_slot = slots[id(optimizer._velocities[index])]
        table, m, v = lazy_adam_rows(
            trainable[position[id(variable)]],
            optimizer_values[m_slot],
            optimizer_values[v_slot],
            ids,
            grads,
            alpha,
            optimizer.beta_1,
            optimizer.beta_2,
            optimizer.epsilon,
        )
        trainable[position[id(variable)]] = table
        optimizer_values[m_slot], optimizer_values[v_slot] = m, v
    iterations = slots[id(optimizer.iterations)]
    optimizer_values[iterations] = optimizer_values[iterations] + 1

    logs, metrics_values = model._update_metrics_variables(
        metrics_values, loss, x, y, queries, sample_weight
    )
    return logs, (trainable, non_trainable, optimizer_values, metrics_values)


def _gather(table, ids):
    """``table``'s rows ``ids``; NaN rows for ids out of range, as the dense path's
    lookup (``ops.take``) gives, where JAX's indexing would clamp them silently.
    """
    return jnp.take(table, ids, axis=0, mode="fill", fill_value=jnp.nan)


def _current(scope, variables, values):
    """The values of ``variables`` after ``scope`` (its new value where one was assigned)."""
    out = []
    for variable, value in zip(variables, values, strict=True):
        new = scope.get_current_value(variable)
        out.append(value if new is None else new)
    return out
