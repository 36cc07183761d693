"""Keras layers of tfcro's two-tower model: pooling, id embeddings and the towers."""

from tfcro.constants import PAD
from tfcro.layers.pooling import (
    POOLINGS,
    MaskedMeanPooling,
    masked_mean,
    register_pooling,
)
from tfcro.layers.pooling import get as get_pooling
from tfcro.layers.towers import (
    CategoricalEmbedding,
    L2Normalize,
    PaddingMask,
    build_item_tower,
    build_user_tower,
    string_tower,
    vocabulary_indices,
)

__all__ = [
    "PAD",
    "POOLINGS",
    "CategoricalEmbedding",
    "L2Normalize",
    "MaskedMeanPooling",
    "PaddingMask",
    "build_item_tower",
    "build_user_tower",
    "get_pooling",
    "masked_mean",
    "register_pooling",
    "string_tower",
    "vocabulary_indices",
]
