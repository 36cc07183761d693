"""A deterministic synthetic dataset with planted multi-interest structure.

The embedded default dataset: no files needed, a few hundred milliseconds to
generate, sized so that a two-tower model trains in a minute or two on 2 cores.

The generative story (all draws from one ``numpy`` generator seeded by ``seed``):

1. **Items and interests.** Items are dealt round-robin (after a shuffle) into
   ``num_interests`` clusters; the cluster is the item feature ``category``
   (``"c<k>"``).
2. **Popularity.** Item ``i`` gets weight ``rank_i ** -popularity_exponent`` with a
   random rank permutation, so counts follow a power law (Zipf) overall and
   within every cluster.
3. **Users.** Each user mixes ``1..max_user_interests`` clusters with Dirichlet
   weights and has ``seq_len`` behaviours (an int or a ``(low, high)`` range).
4. **Sessions.** Behaviours come in sessions of mean length ``session_length``: a
   session draws one of the user's interests and then items from that cluster by
   popularity. With probability ``noise`` a behaviour is instead a globally
   popular item (what a popularity baseline can get). A user never repeats an
   item (the first occurrence is kept).
5. **Time.** Each user starts at a random time; behaviours are an hour apart.

A model that recovers the user's clusters from the history ranks the right
cluster's popular items first, which beats global popularity by a wide margin
(each user's clusters hold ~2/``num_interests`` of the catalog); the current
session's cluster rewards sequence-aware models too.

Example:
    >>> data = generate(num_users=100, num_items=50, seed=0)
    >>> data.frame.columns.tolist(), data.item_features.columns.tolist()
    (['user', 'item', 'time'], ['item', 'category'])
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfcro.data.types import Interactions
from tfcro.validation import check_float, check_fraction, check_int, invalid

__all__ = ["generate"]


def _seq_range(seq_len) -> tuple[int, int]:
    low, high = (seq_len, seq_len) if isinstance(seq_len, int | np.integer) else tuple(seq_len)
    if isinstance(low, bool) or not (1 <= int(low) <= int(high)):
        raise invalid(
            "seq_len", "an integer >= 1 or a (low, high) pair with 1 <= low <= high", seq_len
        )
    return int(low), int(high)


def generate(
    num_users: int = 2000,
    num_items: int = 1000,
    num_interests: int = 20,
    seq_len: int | tuple[int, int] = (20, 40),
    max_user_interests: int = 3,
    session_length: float = 5.0,
    popularity_exponent: float = 1.0,
    noise: float = 0.1,
    seed: int = 0,
) -> Interactions:
    """Generates time-ordered interactions with latent user interests.

    Args:
        num_users: users ``"u0" .. "u<num_users-1>"``.
        num_items: items ``"i0" .. "i<num_items-1>"`` (items never drawn are absent).
        num_interests: the number of item clusters (``<= num_items``).
        seq_len: behaviours per user, an int or an inclusive ``(low, high)`` range
            (mean 30 by default). Users whose interests hold fewer items get fewer.
        max_user_interests: each user mixes ``1..max_user_interests`` clusters.
        session_length: mean session length (geometric); ``1`` = no sessions.
        popularity_exponent: the Zipf exponent of item popularity (``>= 0``).
        noise: probability that a behaviour is a globally popular item, in ``[0, 1]``.
        seed: makes the output reproducible (same seed, same data).

    Returns:
        Interactions (``user``, ``item``, ``time``) sorted by time, with item
        features ``category``; ``name`` is ``"synthetic"``.
    """
    num_users = check_int("num_users", num_users)
    num_items = check_int("num_items", num_items)
    num_interests = check_int("num_interests", num_interests)
    max_user_interests = check_int("max_user_interests", max_user_interests)
    low, high = _seq_range(seq_len)
    if num_interests > num_items:
        raise invalid("num_interests", f"<= `num_items` ({num_items})", num_interests)
    check_float("session_length", session_length, minimum=1.0)
    check_float("popularity_exponent", popularity_exponent, minimum=0.0)
    check_fraction("noise", noise)
    rng = np.random.default_rng(seed)

    # 1-2. Items: a cluster each (balanced) and a power-law popularity weight.
    cluster = rng.permutation(np.arange(num_items) % num_interests)
    weight = (rng.permutation(num_items) + 1.0) ** -float(popularity_exponent)
    by_cluster = np.argsort(cluster, kind="stable")
    sorted_cluster = cluster[by_cluster]
    sorted_weight = weight[by_cluster]
    cluster_total = np.bincount(sorted_cluster, weights=sorted_weight, minlength=num_interests)
    # A monotone "cluster + within-cluster CDF" array: searchsorted(c + u) picks an
    # item of cluster c with probability proportional to its weight.
    within = np.cumsum(sorted_weight) - np.repeat(
        np.cumsum(cluster_total) - cluster_total, np.bincount(sorted_cluster)
    )
    cluster_cdf = sorted_cluster + within / cluster_total[sorted_cluster]
    global_cdf = np.cumsum(weight) / weight.sum()

    # 3. Users: 1..max interests with Dirichlet mixture weights.
    k = rng.integers(1, min(max_user_interests, num_interests) + 1, size=num_users)
    chosen = np.argsort(rng.random((num_users, num_interests)), axis=1)
    mixture = np.zeros((num_users, num_interests))
    rows = np.repeat(np.arange(num_users), k)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(k) - k, k)  # 0..k_u-1 per user
    cols = chosen[rows, rank]
    mixture[rows, cols] = rng.gamma(1.0, size=len(rows))
    mixture /= mixture.sum(axis=1, keepdims=True)
    lengths = rng.integers(low, high + 1, size=num_users)

    # 4. Sessions over an oversampled grid (repeats are dropped afterwards).
    steps = 3 * high + 10
    new_session = rng.random((num_users, steps)) < 1.0 / float(session_length)
    new_session[:, 0] = True
    session = np.cumsum(new_session, axis=1) - 1
    mixture_cdf = np.cumsum(mixture, axis=1)
    draw = rng.random((num_users, steps))
    session_interest = (mixture_cdf[:, None, :] < draw[:, :, None]).sum(axis=2)
    session_interest = np.minimum(session_interest, num_interests - 1)
    interest = np.take_along_axis(session_interest, session, axis=1)
    in_cluster = by_cluster[
        np.minimum(
            np.searchsorted(cluster_cdf, interest + rng.random(interest.shape), side="right"),
            num_items - 1,
        )
    ]
    popular = np.minimum(
        np.searchsorted(global_cdf, rng.random(interest.shape), side="right"), num_items - 1
    )
    item = np.where(rng.random(interest.shape) < noise, popular, in_cluster)

    # First occurrence of each (user, item), truncated to the user's length.
    frame = pd.DataFrame(
        {"user": np.repeat(np.arange(num_users), steps), "item": item.ravel()}
    ).drop_duplicates(["user", "item"], keep="first")
    position = frame.groupby("user", sort=False).cumcount().to_numpy()
    keep = position < lengths[frame["user"].to_numpy()]
    frame, position = frame.loc[keep], position[keep]

    # 5. Time: a random start per user, one hour between behaviours.
    start = rng.uniform(0.0, 90 * 86400.0, size=num_users)
    time = np.floor(start[frame["user"].to_numpy()]) + 3600.0 * position
    out = pd.DataFrame(
        {
            "user": pd.Series(frame["user"].to_numpy()).map("u{}".format).astype(str),
            "item": pd.Series(frame["item"].to_numpy()).map("i{}".format).astype(str),
            "time": time.astype("float64"),
        }
    )
    out = out.sort_values("time", kind="stable").reset_index(drop=True)
    features = pd.DataFrame(
        {
            "item": pd.Series(np.arange(num_items)).map("i{}".format).astype(str),
            "category": pd.Series(cluster).map("c{}".format).astype(str),
        }
    )
    return Interactions(out, item_features=features, name="synthetic")
