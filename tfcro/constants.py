"""Constants shared by the data, model, loss and serving layers (one definition each).

No TensorFlow here: the serving layer imports them too.
"""

#: The padding id of histories and feature values: masked by the towers' lookups.
PAD = ""

#: The split protocols of :mod:`tfcro.data.protocols` (``pipelines.train --protocol``).
PROTOCOLS = ("sequential", "collaborative")

#: Scores at or below this mark absent candidates in a loss's ``[B, C]`` score matrix
#: (TFRS masks with about -3.4e38 and removes accidental hits the same way).
ABSENT_SCORE = -1e30

__all__ = ["ABSENT_SCORE", "PAD", "PROTOCOLS"]
