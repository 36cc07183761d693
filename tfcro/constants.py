"""Constants shared by the data, model, loss and serving layers (one definition each).

No TensorFlow here: the serving layer imports them too.
"""

import numpy as np

#: The padding id of histories and feature values: masked by the towers' lookups.
PAD = ""

#: The split protocols of :mod:`tfcro.data.protocols` (``pipelines.train --protocol``).
PROTOCOLS = ("sequential", "collaborative")

#: Scores at or below this mark absent candidates in a loss's ``[B, C]`` score matrix
#: (TFRS masks candidates and accidental hits with :data:`MASKED_SCORE`, about -3.4e36).
ABSENT_SCORE = -1e30

#: The score a retrieval batch gives a masked candidate (accidental hit, off the score
#: mask): TFRS's value, far below :data:`ABSENT_SCORE`.
MASKED_SCORE = float(np.finfo(np.float32).min / 100.0)

__all__ = ["ABSENT_SCORE", "MASKED_SCORE", "PAD", "PROTOCOLS"]
