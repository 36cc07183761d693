"""``tf.distribute`` for training runs: strategies, chief-only writes, cross-replica negatives.

- :func:`make_strategy` builds ``MirroredStrategy`` (the devices of one machine)
  or ``MultiWorkerMirroredStrategy`` (several processes/machines, configured by
  the standard ``TF_CONFIG`` environment variable).
- :func:`is_chief`: only the chief writes the run folder; the other workers
  write their (identical) checkpoints to a temporary folder that is removed
  (every worker must take part in saving: it can involve collective ops).
- :func:`gather_other_replicas`: the candidates of the other replicas (all-gather),
  so that each replica's rows also see the other replicas' positives as
  negatives: with ``TwoTowerConfig(cross_replica_negatives=True)`` a run on
  ``R`` replicas of ``B`` rows sees the same candidates as one process with
  ``R * B`` rows.

See ``docs/distributed.md`` for launching on a cluster.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tfcro._compat import tf

DISTRIBUTE = ("none", "mirrored", "multi-worker")


def make_strategy(name: str | tf.distribute.Strategy | None) -> tf.distribute.Strategy:
    """The strategy called ``name`` (``none``, ``mirrored``, ``multi-worker``), or ``name`` itself.

    ``multi-worker`` reads the cluster from ``TF_CONFIG`` and must be created
    before TensorFlow runs its first operation in the process.
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    if name is None or name == "none":
        return tf.distribute.get_strategy()  # the default (no-op) strategy
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "`distribute`='multi-worker' needs the TF_CONFIG environment "
                "variable (cluster and task), see docs/distributed.md. "
                "Received: TF_CONFIG unset"
            )
        try:
            parsed = json.loads(config)
            parsed["cluster"], parsed["task"]["type"], parsed["task"]["index"]  # noqa: B018
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                'TF_CONFIG should be JSON like {"cluster": {"worker": '
                '["host1:port", "host2:port"]}, "task": {"type": '
                f'"worker", "index": 0}}}}. Received: TF_CONFIG={config!r}'
            ) from err
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(
        f"`distribute` should be one of {list(DISTRIBUTE)}. Received: distribute={name!r}"
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder (always true outside multi-worker runs)."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def distribute_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shards by element (``AutoShardPolicy.DATA``): in-memory datasets have no files to shard.

    Every worker builds the same (identically seeded) pipeline and keeps its own
    share of each global batch.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def gather_other_replicas(values: Any) -> Any:
    """The rows of ``values`` (numeric tensors of ``[B_local, ...]``) held by the *other* replicas.

    In a replica context with several replicas: all-gathers ``values`` along
    axis 0 (differentiable; replicas may hold different batch sizes) and drops
    this replica's own rows. Elsewhere (one replica, cross-replica context):
    empty tensors. The structure of ``values`` is kept.
    """
    context = tf.distribute.get_replica_context()
    flat = tf.nest.flatten(values)
    if context is None or context.num_replicas_in_sync == 1:
        return tf.nest.pack_sequence_as(values, [v[:0] for v in flat])
    size = tf.shape(flat[0])[:1]
    sizes = context.all_gather(size, axis=0)  # [R]
    gathered = [context.all_gather(v, axis=0) for v in flat]  # one dtype per collective
    start = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    positions = tf.range(tf.reduce_sum(sizes))
    keep = tf.logical_or(positions < start, positions >= start + size[0])
    return tf.nest.pack_sequence_as(values, [tf.boolean_mask(g, keep) for g in gathered])
