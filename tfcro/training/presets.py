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
            "embedding 64, 1,024 rows x 512 shared uniform negatives (no in-batch "
            "negatives; the logQ correction on, which changes nothing until in-batch "
            "negatives are turned on), Adam 0.0026, embedding L2 1.5e-5, scale 8, up to "
            "60 epochs, patience 6. The negatives, learning rate and L2 are ml-1m's best "
            "setting (tuning round 2's trial 3: softmax test Recall@20 0.2770 +- 0.0009 "
            "over 3 seeds at scale 6.3, against 0.2638 +- 0.0011 at the previous "
            "preset's setting); the scale is Yelp2018's (softmax validation Recall@20 "
            "0.0803 at 8 against 0.0782 at 6.3 and 0.0776 at 10; test 0.0640, against "
            "0.0608 +- 0.0009 at the previous preset's setting, which was round 1's: "
            "in-batch + 2,048 uniform negatives, LazyAdam 0.0118, L2 0.0035). Measured "
            "with the Keras 3 model (tfcro.keras3.TwoTowerRetrieval, the same MF, "
            "negatives, logQ and L2; evaluating every 2 epochs with patience 3), which "
            "matched this trainer at round 1's setting (Yelp2018 test Recall@20 0.0608 "
            "against 0.0615) and at this one on ml-1m (this trainer: test Recall@20 "
            "0.2729, the Keras 3 model 0.2712, seed 0, scale 8); docs/benchmarks.md, "
            "Recipe and the alpha sweep. Tuned for "
            "softmax; CROLoss with --kernel exponential --alpha 1.2 led it at this "
            "setting on Yelp2018 (test Recall@20 0.0656 against 0.0640, one seed)"
        ),
        "settings": {
            "protocol": "collaborative",
            "user_tower": "id",
            "embedding_dim": 64,
            "batch_size": 1024,
            "num_negatives": 512,
            "in_batch_negatives": False,
            "logq": True,
            "optimizer": "adam",
            "learning_rate": 0.0026348894169180258,
            "embedding_l2": 1.52775084633677e-05,
            "scale": 8.0,
            "epochs": 60,
            "patience": 6,
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
