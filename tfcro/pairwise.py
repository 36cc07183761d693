"""``tfcro.pairwise``: the same module object as :mod:`tfcro.losses.pairwise`."""

import sys

from tfcro.losses import pairwise as _module

sys.modules[__name__] = _module
