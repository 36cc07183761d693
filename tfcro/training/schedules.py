"""Learning-rate schedules of a training run: a linear warm-up, then constant or cosine.

The schedule counts optimizer steps (``optimizer.iterations``, restored with the
checkpoint, so a resumed run continues where it stopped); its lengths are given
in epochs and turned into steps with the run's ``steps_per_epoch``.
"""

from __future__ import annotations

import math
from typing import Any

from tfcro._compat import keras, tf
from tfcro.validation import check_float, check_int


@keras.utils.register_keras_serializable(package="tfcro")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``learning_rate * min(1, (step + 1) / warmup_steps)``: a linear warm-up to a constant.

    Args:
      learning_rate: the rate after the warm-up.
      warmup_steps: steps of the warm-up (0: constant from the first step).

    Example:
      >>> schedule = LinearWarmup(0.01, warmup_steps=4)
      >>> [round(float(schedule(step)), 4) for step in (0, 1, 3, 10)]
      [0.0025, 0.005, 0.01, 0.01]
    """

    def __init__(self, learning_rate: float, warmup_steps: int):
        super().__init__()
        self.learning_rate = check_float("learning_rate", learning_rate, minimum=0, strict=True)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)

    def __call__(self, step):
        rate = tf.constant(self.learning_rate, tf.float32)
        if self.warmup_steps == 0:
            return rate
        done = (tf.cast(step, tf.float32) + 1.0) / float(self.warmup_steps)
        return rate * tf.minimum(1.0, done)

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def learning_rate(
    base: float,
    schedule: str,
    *,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
    schedule_epochs: int = 1,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The optimizer's ``learning_rate`` for a run's schedule settings.

    Args:
      base: the peak learning rate.
      schedule: ``"constant"`` (after the warm-up) or ``"cosine"`` (Keras' ``CosineDecay``
        from ``base`` to 0 over ``schedule_epochs``, the warm-up included).
      steps_per_epoch: optimizer steps in an epoch.
      warmup_epochs: the linear warm-up, in epochs (may be fractional).
      schedule_epochs: the cosine's horizon in epochs.

    Returns:
      ``base`` itself for a constant rate without warm-up, else a schedule.
    """
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, 1)
    warmup = int(math.ceil(warmup_epochs * steps_per_epoch))
    if schedule == "constant":
        return base if warmup == 0 else LinearWarmup(base, warmup)
    if schedule == "cosine":
        total = max(check_int("schedule_epochs", schedule_epochs, 1) * steps_per_epoch, warmup + 1)
        if warmup == 0:
            return keras.optimizers.schedules.CosineDecay(base, decay_steps=total)
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=total - warmup, warmup_target=base, warmup_steps=warmup
        )
    raise ValueError(f"`lr_schedule` should be 'constant' or 'cosine'. Received: {schedule!r}")
