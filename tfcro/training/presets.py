"""Named recipes: the settings ``python -m pipelines.train --preset <name>`` starts from.

A preset is a dict of :mod:`pipelines.train` options (the flags' names with
underscores: ``learning_rate`` for ``--learning-rate``); explicit flags override it.
Where each value comes from is said beside it and in docs/benchmarks.md ("Recipe").
"""

from __future__ import annotations

from typing import Any

from tfcro.validation import check_choice

#: name -> {"description": str, "settings": {option: value}}.
PRESETS: dict[str, dict[str, Any]] = {
    "cf": {
        "description": (
            "LightGCN-style collaborative filtering (a pre-split train/test file, full-"
            "catalog ranking with training items excluded): matrix factorisation, "
            "embedding 64, 1,024 rows x (in-batch negatives with the logQ correction + "
            "2,048 shared uniform negatives), LazyAdam 0.0118, embedding L2 0.0035, "
            "scale 8: the best softmax trial of the Yelp2018 tuning study (validation "
            "Recall@20 0.0783, test 0.0615; 3 seeds at convergence 0.0608 +- 0.0009), "
            "where the first probes' setting (1,024 uniform + in-batch without logQ, "
            "learning rate 0.01, scale 10) reached 0.0399 (docs/benchmarks.md, Recipe). "
            "Tuned for softmax; the other losses take it unchanged in the leaderboard"
        ),
        "settings": {
            "protocol": "collaborative",
            "user_tower": "id",
            "embedding_dim": 64,
            "batch_size": 1024,
            "num_negatives": 2048,
            "in_batch_negatives": True,
            "logq": True,
            "optimizer": "lazy_adam",
            "learning_rate": 0.0118,
            "embedding_l2": 0.0035,
            "scale": 8.0,
            "epochs": 30,
            "patience": 3,
            "monitor": "recall@20",
            "ks": [20, 50, 100],
            "valid_fraction": 0.1,
        },
    },
    "sequential": {
        "description": (
            "the CROLoss paper's protocol (user-disjoint 8:1:1 split, the last 20 "
            "behaviours as history, first 80% of an evaluation user's behaviours as "
            "history): its DNN user tower, embedding 32, batch 256, 10 x batch uniform "
            "negatives, Adam 1e-3, Recall@100 for selection (the paper's settings)"
        ),
        "settings": {
            "protocol": "sequential",
            "user_tower": "history",
            "max_history": 20,
            "embedding_dim": 32,
            "batch_size": 256,
            "optimizer": "adam",  # negatives: 10 x batch, the command line's default
            "learning_rate": 1e-3,
            "scale": 10.0,
            "epochs": 20,
            "patience": 3,
            "monitor": "recall@100",
            "valid_fraction": 0.1,
        },
    },
}


def preset_settings(name: str) -> dict[str, Any]:
    """A copy of preset ``name``'s option values (ValueError naming the presets)."""
    check_choice("preset", name, PRESETS)
    return dict(PRESETS[name]["settings"])
