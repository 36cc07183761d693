"""The reproduce pipeline: grids as data, aggregation, tables and plots on tiny data."""

from __future__ import annotations

import math
import os

import pandas as pd
import pytest

from pipelines import reproduce
from tfcro import experiments as ex

TINY = [
    "--dataset-preset",
    "synthetic",
    "--num-users",
    "60",
    "--num-items",
    "120",
    "--batch-size",
    "64",
    "--num-negatives",
    "64",
    "--embedding-dim",
    "8",
    "--epochs",
    "1",
    "--seeds",
    "0",
    "--ks",
    "5,10,100",
    "--learning-rate",
    "0.01",
]


# ----------------------------------------------------------------------------- aggregation


def test_aggregate_hand_computed():
    # values 0.2, 0.4, 0.9: mean 0.5; deviations -0.3, -0.1, 0.4; squares .09 .01 .16
    # -> sum 0.26, / (n - 1) = 0.13, std = sqrt(0.13)
    mean, std, n = ex.aggregate([0.2, 0.4, 0.9])
    assert n == 3
    assert mean == pytest.approx(0.5)
    assert std == pytest.approx(math.sqrt(0.13))


def test_aggregate_single_missing_and_nan():
    assert ex.aggregate([0.25])[:1] == (0.25,) and math.isnan(ex.aggregate([0.25])[1])
    mean, std, n = ex.aggregate([])
    assert n == 0 and math.isnan(mean) and math.isnan(std)
    # NaN and None (a missing run) are left out
    assert ex.aggregate([0.1, float("nan"), None, 0.3]) == pytest.approx((0.2, math.sqrt(0.02), 2))


def test_results_frame_aggregates_over_seeds():
    grid = ex.Grid("table2", "t", (ex.cell("softmax", "softmax"),))
    c = grid.cells[0]
    runs = [
        ex.RunRecord(
            c,
            0.01,
            s,
            f"r{s}",
            {"recall@10": v, "ndcg@10": v / 2, "val_recall@100": 0.5, "best_epoch": e},
        )
        for s, (v, e) in enumerate([(0.1, 1), (0.3, 2), (0.2, 3)])
    ]
    result = ex.GridResult(grid, {c: 0.01}, {c: runs}, {c: {0.01: 0.5}})
    frame = ex.results_frame(grid, result, ks=(10,))
    row = frame.iloc[0]
    assert row["seeds"] == 3 and row["best_epoch"] == pytest.approx(2.0)
    assert row["recall@10_mean"] == pytest.approx(0.2)
    assert row["recall@10_std"] == pytest.approx(0.1)
    assert row["ndcg@10_std"] == pytest.approx(0.05)
    assert "20.00 ± 10.00" in ex.markdown_table(frame, grid, ks=(10,))


def test_paired_deltas_hand_computed():
    grid = ex.Grid("table2", "t", (ex.cell("softmax", "softmax"), ex.cell("cro", "cro")))
    soft, cro = grid.cells

    def recs(c, values):
        return [
            ex.RunRecord(c, 0.01, s, "", {"recall@10": v, "ndcg@10": v})
            for s, v in enumerate(values)
        ]

    # per-seed differences 0.05, 0.01, 0.03 -> mean 0.03, std sqrt((4+4+0)e-4 / 2) = 0.02
    result = ex.GridResult(
        grid,
        {soft: 0.01, cro: 0.01},
        {soft: recs(soft, [0.10, 0.30, 0.20]), cro: recs(cro, [0.15, 0.31, 0.23])},
        {},
    )
    frame = ex.paired_deltas(grid, result, ks=(10,))
    assert list(frame["row"]) == ["cro"] and frame.iloc[0]["seeds"] == 3
    assert frame.iloc[0]["recall@10_delta_mean"] == pytest.approx(0.03)
    assert frame.iloc[0]["recall@10_delta_std"] == pytest.approx(0.02)
    assert "+3.00 ± 2.00" in ex.markdown_deltas(frame, ks=(10,))
    with pytest.raises(ValueError, match="`reference`"):
        ex.paired_deltas(grid, result, ks=(10,), reference="bpr")


def test_choose_learning_rate_uses_validation_mean():
    assert ex.choose_learning_rate({0.001: [0.2, 0.4], 0.01: [0.35, 0.2]}) == 0.001
    assert ex.choose_learning_rate({0.001: [float("nan")]}) is None


# ----------------------------------------------------------------------------- grids


def test_grids_shapes():
    t2 = ex.make_grid("table2", learning_rates=(0.001, 0.01))
    assert [c.row for c in t2.cells] == list(ex.TABLE2_METHODS)
    assert all(c.learning_rates == (0.001, 0.01) for c in t2.cells)
    t3 = ex.make_grid("table3")
    assert len(t3.cells) == len(ex.TABLE3_KERNELS) * len(ex.ALPHAS)
    hinge = [c for c in t3.cells if c.row == "hinge"][0]
    assert hinge.loss_options()["margin"] == ex.PAPER_MARGIN
    t4 = ex.make_grid("table4")
    assert [c.row for c in t4.cells] == [
        f"{w}/{g}" for w in ex.WEIGHT_KERNELS for g in ex.GRADIENT_KERNELS
    ]
    f5 = ex.make_grid("figure5", alphas=(1.0,))
    assert [(c.row, c.loss, c.x) for c in f5.cells] == [
        ("hinge (triplet)", "triplet", 0.0),
        ("hinge (triplet)", "cro", 1.0),
        ("softplus (BPR)", "bpr", 0.0),
        ("softplus (BPR)", "cro", 1.0),
    ]
    # the same setting in two grids is one run folder
    lam3 = [c for c in t3.cells if c.row == "lambda" and c.x == 1.0][0]
    lam4 = [c for c in t4.cells if c.row == "sigmoid/softplus"][0]
    assert lam3.slug(0.01) == lam4.slug(0.01)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"name": "table9"}, "experiment"),
        ({"name": "table2", "methods": ["adam"]}, "methods"),
        ({"name": "table3", "kernels": ["cosine"]}, "kernels"),
        ({"name": "table3", "alphas": [-1.0]}, "alphas"),
        ({"name": "table2", "learning_rates": []}, "learning_rates"),
    ],
)
def test_bad_grid_options_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ex.make_grid(**kwargs)


def test_bad_cli_options():
    with pytest.raises(ValueError, match="`experiment`"):
        reproduce.experiments_from_arg("table7")
    with pytest.raises(ValueError, match="`dataset_preset`"):
        ex.preset_config("movielens-20m")
    with pytest.raises(SystemExit):
        reproduce.main(["--experiment", "nope"])


def test_preset_config_paper_settings():
    config = ex.preset_config("ml-100k", data_root="/data")
    assert config.data_dir == os.path.join("/data", "ml-100k")
    assert config.model["embedding_dim"] == 32 and config.model["scale"] == 10.0
    assert config.model["num_negatives"] == 10 * config.batch_size
    assert config.max_history == 20 and config.monitor == "recall@100"
    ml1m = ex.preset_config("ml-1m", data_root="/data")
    assert ml1m.protocol == "collaborative" and ml1m.model["use_user_id"]


# ----------------------------------------------------------------------------- end to end


def test_reproduce_tiny_grids_write_tables_and_plots(tmp_path, capsys):
    out = str(tmp_path / "repro")
    argv = TINY + [
        "--output-dir",
        out,
        "--experiment",
        "table2,figure4",
        "--methods",
        "softmax,cro-lambda",
        "--learning-rates",
        "0.01",
        "--alphas",
        "1.0",
    ]
    assert reproduce.main(argv) == 0
    assert os.path.getsize(os.path.join(out, "table2_delta.md")) > 0
    for name in ("table2", "figure4"):
        for ext in ("csv", "md", "png"):
            assert os.path.getsize(os.path.join(out, f"{name}.{ext}")) > 0
    t2 = pd.read_csv(os.path.join(out, "table2.csv"))
    assert list(t2["row"]) == ["softmax", "cro-lambda"]
    for col in (
        "learning_rate",
        "seeds",
        "val_recall@100",
        "recall@5_mean",
        "recall@5_std",
        "ndcg@100_mean",
        "ndcg@100_std",
    ):
        assert col in t2.columns
    assert (t2["seeds"] == 1).all() and (t2["learning_rate"] == 0.01).all()
    assert t2["recall@100_mean"].between(0, 1).all()
    f4 = pd.read_csv(os.path.join(out, "figure4.csv"))
    assert list(zip(f4["row"], f4["column"], strict=True)) == [
        ("sigmoid", "alpha=1"),
        ("lambda", "alpha=1"),
    ]
    md = open(os.path.join(out, "table2.md"), encoding="utf-8").read()
    assert "| softmax cross-entropy |" in md and "R@5" in md and "NDCG@100" in md
    # a rerun trains nothing: every run folder already has metrics.json
    capsys.readouterr()
    assert reproduce.main(argv + ["--no-plots"]) == 0
    assert "[reproduce] train " not in capsys.readouterr().out


def test_max_runs_zero_writes_empty_tables(tmp_path):
    out = str(tmp_path / "none")
    assert (
        reproduce.main(
            TINY + ["--output-dir", out, "--experiment", "table4", "--max-runs", "0", "--no-plots"]
        )
        == 0
    )
    t4 = pd.read_csv(os.path.join(out, "table4.csv"))
    assert len(t4) == 6 and (t4["seeds"] == 0).all()
