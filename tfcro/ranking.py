"""``tfcro.ranking``: the same module object as :mod:`tfcro.losses.ranking`."""

import sys

from tfcro.losses import ranking as _module

sys.modules[__name__] = _module
