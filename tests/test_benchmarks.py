"""The benchmarks run (tiny sizes) and print the tables that docs/benchmarks.md quotes.

Timings are never asserted here: the numbers live in docs/benchmarks.md with
the machine and the command; this only keeps the commands from rotting.
"""

import pytest

from benchmarks import (
    bench_accidental_hits,
    bench_losses,
    bench_retrieval,
    bench_training,
    valid_split_check,
)


def _table_rows(text, header):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_bench_accidental_hits(capsys):
    assert (
        bench_accidental_hits.main(["--sizes", "16x64,32x96", "--steps", "1", "--rounds", "1"]) == 0
    )
    rows = _table_rows(capsys.readouterr().out, "| B x C |")
    assert [row[0] for row in rows] == ["16 x 64", "32 x 96"]
    for row in rows:
        assert all(float(cell) > 0 for cell in row[1:4]) and row[4].endswith("x")


@pytest.mark.parametrize("bad", ["16", "16x8", "ax3"])
def test_bench_accidental_hits_rejects_bad_sizes(bad, capsys):
    with pytest.raises(SystemExit):
        bench_accidental_hits.main(["--sizes", bad])
    assert "--sizes" in capsys.readouterr().err


def test_bench_retrieval(capsys):
    bench_retrieval.main(
        [
            "--num-items",
            "3000",
            "--dim",
            "8",
            "--clusters",
            "20",
            "--k",
            "10",
            "--num-queries",
            "20",
            "--single-queries",
            "3",
            "--tower-requests",
            "2",
        ]
    )
    rows = _table_rows(capsys.readouterr().out, "| catalog |")
    assert len(rows) >= 2  # ScaNN and exact search at least
    for row in rows:
        assert 0.0 <= float(row[-1]) <= 1.0  # recall@k vs exact


@pytest.mark.slow
def test_bench_losses(capsys):
    assert (
        bench_losses.main(
            [
                "--batch-size",
                "32",
                "--num-negatives",
                "64",
                "--steps",
                "1",
                "--rounds",
                "1",
                "--fit-steps",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for label in bench_losses.LOSSES:
        assert label in out


@pytest.mark.slow
def test_bench_training(capsys):
    args = [
        "--num-users",
        "300",
        "--num-items",
        "200",
        "--interactions",
        "6000",
        "--max-history",
        "10",
        "--embedding-dim",
        "8",
        "--batch-size",
        "64",
        "--num-negatives",
        "32",
        "--steps",
        "2",
        "--rounds",
        "1",
        "--optimizer",
        "lazy_adam",
        "--losses",
        "softmax,cro-lambda",
    ]
    assert bench_training.main(args) == 0
    out = capsys.readouterr().out
    rows = _table_rows(out, "| loss |")
    assert [row[0] for row in rows] == ["softmax", "cro-lambda"]
    for row in rows:
        assert all(float(cell.replace(",", "")) > 0 for cell in row[1:5])
        assert row[5].endswith("x")
    parts = _table_rows(out, "| part |")
    assert [row[0] for row in parts][-1] == "total"


def test_valid_split_check(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = [(u, int(i)) for u in range(40) for i in rng.choice(30, size=8, replace=False)]
    frame = pd.DataFrame(rows, columns=["user_procid", "item_procid"])
    is_test = rng.random(len(frame)) < 0.25
    frame[~is_test].to_csv(tmp_path / "train.tsv", sep="\t", index=False)
    frame[is_test].to_csv(tmp_path / "test.tsv", sep="\t", index=False)
    assert valid_split_check.main(["--dataset", "pairs", "--data-dir", str(tmp_path)]) == 0
    rows = _table_rows(capsys.readouterr().out, "| users |")
    assert [row[0] for row in rows] == ["validation, random", "validation, last", "test"]
    assert all(0 <= float(row[2]) <= 1 for row in rows)


@pytest.mark.slow
def test_bench_service(capsys):
    from benchmarks import bench_service

    assert bench_service.main(["--catalogs", "2000", "--concurrency", "2", "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    rows = _table_rows(out, "| items | clients | service |")
    assert [row[2] for row in rows] == ["unbatched", "batched"]
    for row in rows:
        assert row[:2] == ["2,000", "2"] and float(row[3]) > 0 and row[6] == "0"
    swap = _table_rows(out, "| items | clients during the swap")
    assert swap[0][3] == "0" and swap[0][5].endswith(" s")  # no failure; version 2 answered


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--losses", "foo"], "--losses: unknown ['foo']"),
        (["--trials", "0"], "--trials should be >= 1. Received: 0"),
        (["--seeds", "-1"], "--patience and --seeds should be >= 0"),
        (["--ks", "50,100"], "--ks should be N >= 1 and include --monitor's N"),
        (["--alphas", "0,1"], "--alphas should be > 0. Received: [0.0, 1.0]"),
        (["--reference-scales", "-2"], "--reference-scales should be > 0. Received: [-2.0]"),
        (["--report", "../x"], "--report should be a file name without a folder or a leading"),
        (["--report", ""], "Received: ''"),
    ],
)
def test_keras3_leaderboard_refuses_bad_arguments(argv, message, capsys, tmp_path):
    from benchmarks import keras3_leaderboard

    with pytest.raises(SystemExit):
        keras3_leaderboard.main(["--out", str(tmp_path), *argv])
    assert message in capsys.readouterr().err


def test_keras3_leaderboard_trials_share_the_grids_optimizer():
    from benchmarks import keras3_leaderboard as lb

    base = {"sparse_updates": True, "user_dropout": 0.1}
    first, later = (lb.trial_params("cro", trial, base, 3) for trial in (0, 1))
    assert first["sparse_updates"] is True and first["user_dropout"] == 0.1
    assert later["sparse_updates"] is True  # the optimizer: every trial's
    assert "user_dropout" not in later  # a recipe knob: trial 0's only
    assert "sparse_updates" not in lb.trial_params("cro", 1, {}, 3)


def test_keras3_leaderboard_reports_paired_differences_and_plots(tmp_path):
    """The seed tables pair each loss with softmax on the same seeds (seed 0: the tuning
    run), from a runs table written by hand; the plot is written beside them."""
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    args = lb.build_parser().parse_args(
        ["--out", str(tmp_path), "--losses", "softmax,cro", "--seeds", "0,1,2", "--top", "1"]
    )
    rows = []
    for loss, base in (("softmax", 0.10), ("cro", 0.11)):
        for phase, seed in (("tune", 0), ("seed", 1), ("seed", 2)):
            value = base + 0.01 * seed + (0.001 * seed if loss == "cro" else 0.0)
            row = {"phase": phase, "loss": loss, "trial": 0, "seed": seed, "params": "{}"}
            row.update({"best_epoch": 3, "backend": "jax", "val_recall@20": value})
            for k in lb.KS:
                row.update({f"test_recall@{k}": value, f"test_ndcg@{k}": value / 2})
            rows.append(row)
    for alpha, seed, value in ((0.8, 0, 0.30), (0.8, 1, 0.32), (1.2, 0, 0.20), (1.2, 1, 0.22)):
        row = {"phase": "alpha", "loss": "cro", "trial": 0, "seed": seed, "alpha": alpha}
        row.update({"params": "{}", "val_recall@20": value, "val_recall@50": 1 - value})
        row.update({"val_recall@100": value})
        for k in lb.KS:
            row.update({f"test_recall@{k}": value, f"test_ndcg@{k}": value / 2})
        rows.append(row)
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    text = lb.write_report(args)
    sweep = _table_rows(text.split("Alpha sweep, cro")[1], "| N |")
    assert sweep[0][:4] == ["20", "0.8", "0.3100", "0.8"]
    assert sweep[1][:4] == ["50", "1.2", "0.2100", "0.8"]  # validation's choice, not test's
    assert (tmp_path / lb.ALPHA_PLOT_FILE).stat().st_size > 0
    seeds = _table_rows(text, "| loss | seeds | recall@20 |")
    assert [row[:3] for row in seeds] == [  # best on validation first
        ["cro", "3", "0.1210 ± 0.0110"],
        ["softmax", "3", "0.1100 ± 0.0100"],
    ]
    paired = _table_rows(text.split("Paired differences")[1], "| loss | seeds |")
    # cro - softmax per seed: 0.010, 0.011, 0.012; relative to softmax's mean 0.11
    assert paired[0][:3] == ["cro", "3", "+0.0110 ± 0.0010 (+10.0%)"]
    assert paired[0][4] == "+0.0110 ± 0.0010 (+10.0%)"  # recall@50
    assert (tmp_path / lb.REPORT_FILE).read_text() == text
    assert (tmp_path / lb.PLOT_FILE).stat().st_size > 0


def _leaderboard_row(lb, phase, loss, trial, seed, value, **extra):
    """One runs.csv row whose every metric is ``value`` (NDCG: half of it)."""
    row = {"phase": phase, "loss": loss, "trial": trial, "seed": seed, "params": "{}"}
    row.update({"best_epoch": 3, "backend": "jax", "val_recall@20": value, **extra})
    for k in lb.KS:
        row.update({f"test_recall@{k}": value, f"test_ndcg@{k}": value / 2})
    return row


def test_keras3_leaderboard_reads_only_the_current_grid(tmp_path):
    """Rows that an earlier invocation left (seeds of a trial no longer chosen, trials past
    --trials, a loss no longer in --losses, a diverged run) neither crash the report nor
    enter its selection, seeds or pairs."""
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    rows = [
        _leaderboard_row(lb, "tune", "softmax", 0, 0, 0.10),
        _leaderboard_row(lb, "tune", "cro", 0, 0, 0.11),
        _leaderboard_row(lb, "tune", "bpr", 0, 0, 0.50),  # not in --losses below
        _leaderboard_row(lb, "tune", "softmax", 1, 0, float("nan")),  # diverged
        _leaderboard_row(lb, "tune", "cro", 1, 0, 0.13),
        _leaderboard_row(lb, "seed", "cro", 0, 1, 0.90),  # trial 0: chosen before trial 1 ran
        _leaderboard_row(lb, "seed", "cro", 1, 1, 0.14),
        _leaderboard_row(lb, "seed", "softmax", 0, 1, 0.12),
        _leaderboard_row(lb, "seed", "softmax", 0, 7, 0.12),  # not in --seeds
    ]
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    argv = ["--out", str(tmp_path), "--losses", "softmax,cro", "--seeds", "0,1", "--top", "1"]
    argv += ["--search-space", "1"]
    args = lb.build_parser().parse_args([*argv, "--trials", "2"])
    assert list(lb.best_trials(args, lb.read_runs(str(tmp_path))).trial) == [1, 0]
    text = lb.write_report(args)
    assert "2 complete trial(s) per loss (trials 1.. drawn from search space version 1)" in text
    seeds = _table_rows(text, "| loss | seeds | recall@20 |")
    assert [row[:3] for row in seeds] == [
        ["cro", "2", "0.1350 ± 0.0071"],  # trial 1's seeds 0 and 1, not trial 0's 0.90
        ["softmax", "2", "0.1100 ± 0.0141"],
    ]
    assert lb.plan(args, lb.read_runs(str(tmp_path))) == []

    # --trials 1: every loss selects from its trial 0 only, whose seed-1 runs are done
    args = lb.build_parser().parse_args([*argv, "--trials", "1"])
    assert list(lb.best_trials(args, lb.read_runs(str(tmp_path))).trial) == [0, 0]
    text = lb.write_report(args)
    assert "1 complete trial(s) per loss, selected on" in text  # trial 0 is --base
    seeds = _table_rows(text, "| loss | seeds | recall@20 |")
    assert seeds[0][:3] == ["cro", "2", "0.5050 ± 0.5586"]
    assert lb.plan(args, lb.read_runs(str(tmp_path))) == []


def test_keras3_leaderboard_reports_a_single_seed_without_a_spread(tmp_path):
    """--seeds 0 (the tuning runs only) still gives the seed table and the pairs, with the
    mean alone where one seed has no sample std."""
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    rows = [
        _leaderboard_row(lb, "tune", "softmax", 0, 0, 0.10),
        _leaderboard_row(lb, "tune", "cro", 0, 0, 0.11),
    ]
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    args = lb.build_parser().parse_args(
        ["--out", str(tmp_path), "--losses", "softmax,cro", "--seeds", "0", "--trials", "1"]
    )
    text = lb.write_report(args)
    assert "nan" not in text
    seeds = _table_rows(text, "| loss | seeds | recall@20 |")
    assert [row[:3] for row in seeds] == [["cro", "1", "0.1100"], ["softmax", "1", "0.1000"]]
    paired = _table_rows(text.split("Paired differences")[1], "| loss | seeds |")
    assert paired[0][:3] == ["cro", "1", "+0.0100 (+10.0%)"]


def test_keras3_leaderboard_writes_a_named_report_beside_the_full_one(tmp_path):
    """--report NAME writes NAME.md / NAME.png (here: a subset of the losses, selected
    and paired among themselves) and leaves leaderboard.md / .png as they were."""
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    rows = [
        _leaderboard_row(lb, "tune", "softmax", 0, 0, 0.10),
        _leaderboard_row(lb, "tune", "cro", 0, 0, 0.11),
        _leaderboard_row(lb, "tune", "bpr", 0, 0, 0.08),
    ]
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    argv = ["--out", str(tmp_path), "--seeds", "0", "--trials", "1", "--top", "1"]
    full = lb.write_report(lb.build_parser().parse_args([*argv, "--losses", "softmax,cro,bpr"]))
    plot = (tmp_path / lb.PLOT_FILE).read_bytes()
    args = lb.build_parser().parse_args(
        [*argv, "--losses", "softmax,bpr", "--top", "2", "--report", "issue10"]
    )
    text = lb.write_report(args)
    assert (tmp_path / "issue10.md").read_text() == text
    assert (tmp_path / "issue10.png").stat().st_size > 0
    assert (tmp_path / lb.REPORT_FILE).read_text() == full  # untouched
    assert (tmp_path / lb.PLOT_FILE).read_bytes() == plot
    seeds = _table_rows(text, "| loss | seeds | recall@20 |")
    assert [row[:3] for row in seeds] == [["softmax", "1", "0.1000"], ["bpr", "1", "0.0800"]]
    assert lb.report_files("issue10")[2] == "issue10-alpha_sweep.png"
    assert lb.report_files(lb.REPORT) == (lb.REPORT_FILE, lb.PLOT_FILE, lb.ALPHA_PLOT_FILE)


def test_keras3_leaderboard_alpha_table_compares_the_seeds_every_alpha_has(tmp_path):
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    rows = [_leaderboard_row(lb, "tune", "cro", 0, 0, 0.1)]
    # alpha 0.8 has seeds 1 and 2, alpha 1.2 only seed 1 (a sweep in progress): seed 2's
    # high validation score must not make 0.8 the choice
    for alpha, seed, value in ((0.8, 1, 0.20), (0.8, 2, 0.90), (1.2, 1, 0.30)):
        rows.append(_leaderboard_row(lb, "alpha", "cro", 0, seed, value, alpha=alpha))
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    args = lb.build_parser().parse_args(
        ["--out", str(tmp_path), "--losses", "cro", "--seeds", "1,2", "--trials", "1"]
    )
    sweep = _table_rows(lb.write_report(args).split("Alpha sweep, cro")[1], "| N |")
    assert sweep[0][:5] == ["20", "1.2", "0.3000", "1.2", "0.8: 0.2000, 1.2: 0.3000"]
    # --alphas narrows the table to the alphas asked for
    args = lb.build_parser().parse_args(
        ["--out", str(tmp_path), "--losses", "cro", "--seeds", "1,2", "--alphas", "0.8"]
    )
    sweep = _table_rows(lb.write_report(args).split("Alpha sweep, cro")[1], "| N |")
    assert sweep[0][:5] == ["20", "0.8", "0.5500", "0.8", "0.8: 0.5500 ± 0.4950"]


def test_keras3_leaderboard_alpha_sweep_reads_each_cutoffs_own_model(tmp_path):
    """A sweep row's sel_* columns (each N's model, selected on validation Recall@N)
    replace Recall@N in the alpha table; a row without them keeps the monitor's model."""
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    own = {"sel_val_recall@20": 0.5, "sel_test_recall@20": 0.6, "sel_epoch@20": 4}
    own.update({"sel_val_recall@50": 0.7, "sel_test_recall@50": 0.8, "sel_epoch@50": 6})
    rows = [
        _leaderboard_row(lb, "tune", "cro", 0, 0, 0.1),
        _leaderboard_row(lb, "alpha", "cro", 0, 1, 0.2, alpha=0.8, **own),
        _leaderboard_row(lb, "alpha", "cro", 0, 1, 0.3, alpha=1.2),  # an older sweep row
    ]
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    args = lb.build_parser().parse_args(
        ["--out", str(tmp_path), "--losses", "cro", "--seeds", "1", "--trials", "1"]
    )
    sweep = lb.alpha_runs(args, lb.read_runs(str(tmp_path))).set_index("alpha")
    assert sweep.loc[0.8, ["val_recall@20", "recall@20", "recall@50"]].tolist() == [0.5, 0.6, 0.8]
    assert sweep.loc[1.2, ["val_recall@20", "recall@20", "recall@50"]].tolist() == [0.3, 0.3, 0.3]
    assert sweep.loc[0.8, "recall@100"] == 0.2 and sweep.loc[0.8, "ndcg@20"] == 0.1


def test_keras3_leaderboard_sweeps_softmax_under_the_same_protocol_and_pairs_it(tmp_path):
    """With softmax in --losses, the alpha phase first trains softmax's best trial with
    per-N selection (phase alpha-reference, each seed), then the alphas; the alpha table
    pairs the alpha chosen on validation with softmax on the seeds both have."""
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    rows = [
        _leaderboard_row(lb, phase, loss, 0, seed, value)
        for loss, value in (("softmax", 0.10), ("cro", 0.11))
        for phase, seed in (("tune", 0), ("seed", 1))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    argv = ["--out", str(tmp_path), "--losses", "softmax,cro", "--trials", "1"]
    argv += ["--search-space", "1"]
    args = lb.build_parser().parse_args([*argv, "--seeds", "0,1", "--alphas", "0.8,1.2"])
    todo = lb.plan(args, lb.read_runs(str(tmp_path)))
    assert [(phase, loss, seed) for phase, loss, _, seed, _, _ in todo[:2]] == [
        ("alpha-reference", "softmax", 0),
        ("alpha-reference", "softmax", 1),
    ]
    assert [(phase, loss, params["alpha"]) for phase, loss, _, _, params, _ in todo[2:4]] == [
        ("alpha", "cro", 0.8),
        ("alpha", "cro", 0.8),
    ]
    assert len(todo) == 6
    # without --alphas, or without a CROLoss loss to sweep, no reference run
    no_sweep = lb.build_parser().parse_args([*argv, "--seeds", "0,1"])
    assert all(
        phase != "alpha-reference" for phase, *_ in lb.plan(no_sweep, lb.read_runs(str(tmp_path)))
    )

    # seed 0: alpha 1.2 wins on validation; seed 1 has no reference run yet (left out)
    for alpha, seed, val, test in ((0.8, 0, 0.20, 0.30), (1.2, 0, 0.25, 0.28)):
        rows.append(_leaderboard_row(lb, "alpha", "cro", 0, seed, test, alpha=alpha))
        rows[-1]["val_recall@20"] = val
    rows.append(_leaderboard_row(lb, "alpha", "cro", 0, 1, 0.5, alpha=0.8))
    rows.append(_leaderboard_row(lb, "alpha", "cro", 0, 1, 0.5, alpha=1.2))
    rows.append(_leaderboard_row(lb, "alpha-reference", "softmax", 0, 0, 0.25))
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    text = lb.write_report(args)
    table = _table_rows(text.split("Alpha sweep, cro")[1], "| N |")
    # chosen 1.2 (test 0.28) - softmax (0.25) on seed 0 only: +0.03, +12% of 0.25
    assert table[0][:4] == ["20", "1.2", "0.2800", "0.8"]
    assert table[0][5:7] == ["0.2500", "+0.0300 (+12.0%)"]
    assert "softmax's best trial, paired" in text
    # the seed tables do not take the reference runs for seed runs
    seeds = _table_rows(text, "| loss | seeds | recall@20 |")
    assert [row[:3] for row in seeds] == [
        ["cro", "2", "0.1100 ± 0.0000"],
        ["softmax", "2", "0.1000 ± 0.0000"],
    ]
    assert (tmp_path / lb.ALPHA_PLOT_FILE).stat().st_size > 0


def test_keras3_leaderboard_gives_the_softmax_reference_a_scale_sweep(tmp_path):
    """--reference-scales: softmax's best trial also runs with each other scale (its own
    is the plain reference run, never twice); the report has softmax's scale table and
    pairs each N with the scale validation Recall@N picks."""
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    base = '{"scale": 8.0}'
    rows = [
        _leaderboard_row(lb, "tune", loss, 0, 0, value, params=base)
        for loss, value in (("softmax", 0.10), ("cro", 0.11))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    argv = ["--out", str(tmp_path), "--losses", "softmax,cro", "--trials", "1", "--seeds", "0"]
    argv += ["--base", base, "--alphas", "1.0", "--ks", "20,50", "--search-space", "1"]
    args = lb.build_parser().parse_args([*argv, "--reference-scales", "6,8,10"])
    todo = lb.plan(args, lb.read_runs(str(tmp_path)))
    reference = [(phase, params["scale"]) for phase, _, _, _, params, _ in todo[:3]]
    assert reference == [
        ("alpha-reference", 8.0),
        ("alpha-reference", 6.0),
        ("alpha-reference", 10.0),
    ]
    assert [phase for phase, *_ in todo[3:]] == ["alpha"]

    # softmax: scale 8 (the plain run) wins on validation @20, scale 10 @50
    for scale, val20, val50, test in (
        (None, 0.30, 0.40, 0.20),
        (6.0, 0.20, 0.30, 0.25),
        (10.0, 0.25, 0.50, 0.22),
    ):
        extra = {"val_recall@50": val50}
        extra["params"] = base if scale is None else f'{{"scale": {scale}}}'
        if scale is not None:
            extra["ref_scale"] = scale
        rows.append(_leaderboard_row(lb, "alpha-reference", "softmax", 0, 0, test, **extra))
        rows[-1].update({"val_recall@20": val20, "test_recall@50": test + 0.1})
    extra = {"val_recall@50": 0.5, "params": base}
    rows.append(_leaderboard_row(lb, "alpha", "cro", 0, 0, 0.24, alpha=1.0, **extra))
    rows[-1]["test_recall@50"] = 0.4
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    assert lb.plan(args, lb.read_runs(str(tmp_path))) == []  # every run found, none twice
    text = lb.write_report(args)
    scales = _table_rows(text.split("Scale sweep, softmax")[1], "| N |")
    assert [row[:4] for row in scales] == [["20", "8", "0.2000", "6"], ["50", "10", "0.3200", "6"]]
    table = _table_rows(text.split("Alpha sweep, cro")[1], "| N |")
    # @20: cro 0.24 - softmax at scale 8 (0.20); @50: 0.40 - softmax at scale 10 (0.32)
    assert table[0][5:7] == ["0.2000", "+0.0400 (+20.0%)"]
    assert table[1][5:7] == ["0.3200", "+0.0800 (+25.0%)"]
    assert "softmax (scale picked per N) test Recall@N" in text
    # without --reference-scales the scale runs are left out: the plain run is the pair
    args = lb.build_parser().parse_args(argv)
    table = _table_rows(lb.write_report(args).split("Alpha sweep, cro")[1], "| N |")
    assert "Scale sweep" not in lb.report(args, lb.read_runs(str(tmp_path)))
    assert table[1][5:7] == ["0.3000", "+0.1000 (+33.3%)"]


def test_keras3_leaderboard_reports_an_n_that_only_the_alpha_sweep_measured(tmp_path):
    """--ks 20,...,200 for the sweep over a grid whose seed runs stopped at 100: the
    seed tables leave @200 out, the alpha table has it."""
    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    extra = {"val_recall@200": 0.5, "test_recall@200": 0.6, "test_ndcg@200": 0.3}
    extra.update({"val_recall@50": 0.2, "val_recall@100": 0.3})
    rows = [
        _leaderboard_row(lb, "tune", "softmax", 0, 0, 0.10),
        _leaderboard_row(lb, "tune", "cro", 0, 0, 0.11),
        _leaderboard_row(lb, "alpha", "cro", 0, 0, 0.12, alpha=0.8, **extra),
    ]
    pd.DataFrame(rows).to_csv(tmp_path / lb.RUNS_FILE, index=False)
    argv = ["--out", str(tmp_path), "--losses", "softmax,cro", "--seeds", "0", "--trials", "1"]
    args = lb.build_parser().parse_args([*argv, "--ks", "20,50,100,200"])
    text = lb.write_report(args)
    seeds = text.split("Seeds of each loss's best trial")[1].split("Alpha sweep")[0]
    assert "recall@100" in seeds and "@200" not in seeds
    assert "| cro | 1 | +0.0100 (+10.0%)" in seeds  # the pairs are still there
    sweep = _table_rows(text.split("Alpha sweep, cro")[1], "| N |")
    assert [row[0] for row in sweep] == ["20", "50", "100", "200"]
    assert sweep[3][:3] == ["200", "0.8", "0.6000"]


def test_keras3_leaderboard_refuses_to_resume_with_other_settings(tmp_path, capsys):
    from benchmarks import keras3_leaderboard as lb

    argv = ["--out", str(tmp_path), "--dataset", "synthetic", "--epochs", "5"]
    lb.check_grid(lb.build_parser().parse_args(argv))
    lb.check_grid(lb.build_parser().parse_args([*argv, "--seeds", "4", "--refit"]))  # same grid
    with pytest.raises(SystemExit):
        lb.main([*argv[:-1], "7", "--patience", "1"])
    err = capsys.readouterr().err
    assert "holds a grid run with other settings" in err
    assert "epochs: 5 there, 7 now; patience: 3 there, 1 now" in err


def test_keras3_leaderboard_grids_keep_their_search_space_version(tmp_path, capsys):
    """A new grid records the latest space; one that predates versions resumes on version
    1; a --search-space that contradicts the record is refused; the versions' draws
    differ where documented (v2: the kernel; v3: 4,096 negatives)."""
    import json

    import pandas as pd

    from benchmarks import keras3_leaderboard as lb
    from tfcro.experiments.space import LATEST_SPACE_VERSION

    def parse(out, *extra):
        return lb.build_parser().parse_args(["--out", str(out), "--dataset", "synthetic", *extra])

    (tmp_path / "new").mkdir()
    new = parse(tmp_path / "new")
    lb.check_grid(new)
    assert new.search_space == LATEST_SPACE_VERSION == 3
    assert json.loads((tmp_path / "new" / lb.GRID_FILE).read_text())["search_space"] == 3
    old = tmp_path / "old"
    old.mkdir()
    lb.check_grid(parse(old))
    grid = json.loads((old / lb.GRID_FILE).read_text())
    del grid["search_space"]  # as written before versions
    (old / lb.GRID_FILE).write_text(json.dumps(grid))
    resumed = parse(old)
    lb.check_grid(resumed)
    assert resumed.search_space == 1
    with pytest.raises(SystemExit):
        lb.main(["--out", str(old), "--dataset", "synthetic", "--search-space", "2"])
    assert "draws from search space version 1" in capsys.readouterr().err
    # runs without a grid.json (a grid from before grid.json) are version 1 too
    older = tmp_path / "older"
    older.mkdir()
    pd.DataFrame([_leaderboard_row(lb, "tune", "softmax", 0, 0, 0.1)]).to_csv(
        older / lb.RUNS_FILE, index=False
    )
    args = parse(older)
    lb.check_grid(args)
    assert args.search_space == 1
    with pytest.raises(ValueError, match="check_grid"):
        lb.plan(parse(older), lb.read_runs(str(older)))
    for trial in range(1, 6):
        v1 = {loss: lb.trial_params(loss, trial, {}, 1) for loss in lb.LOSSES}
        v2 = {loss: lb.trial_params(loss, trial, {}, 2) for loss in lb.LOSSES}
        for loss in lb.LOSSES:
            assert {k: v for k, v in v1[loss].items() if k != "kernel"} == {
                k: v for k, v in v2[loss].items() if k != "kernel"
            }
    for trial in range(1, 30):  # v3 = v2 but for num_negatives, in every loss's draw
        v2 = {loss: lb.trial_params(loss, trial, {}, 2) for loss in lb.LOSSES}
        v3 = {loss: lb.trial_params(loss, trial, {}, 3) for loss in lb.LOSSES}
        for loss in lb.LOSSES:
            assert {k: v for k, v in v2[loss].items() if k != "num_negatives"} == {
                k: v for k, v in v3[loss].items() if k != "num_negatives"
            }
    v3 = [lb.trial_params("softmax", t, {}, 3)["num_negatives"] for t in range(1, 30)]
    assert v3[:4] == [512, 1024, 512, 1024] and v3.index(4096) == 4  # as space.py says
    assert {lb.trial_params("softmax", t, {}, 2)["num_negatives"] for t in range(1, 30)} <= {
        512,
        1024,
        2048,
    }
    kernels = {lb.trial_params("cro", t, {}, 2)["kernel"] for t in range(1, 30)}
    assert "exponential" in kernels
    assert {lb.trial_params("cro", t, {}, 1)["kernel"] for t in range(1, 30)} <= {
        "softplus",
        "sigmoid",
    }


def test_keras3_leaderboard_shows_only_the_options_a_loss_takes():
    import json

    from benchmarks import keras3_leaderboard as lb

    params = json.dumps({"alpha": 1.2, "kernel": "exponential", "scale": 6.3, "weight_tau": 3})
    assert json.loads(lb.params_taken("softmax", params)) == {"scale": 6.3}
    assert json.loads(lb.params_taken("cro", params)) == {
        "alpha": 1.2,
        "kernel": "exponential",
        "scale": 6.3,
    }
    assert json.loads(lb.params_taken("sl-at-k", params)) == {"scale": 6.3, "weight_tau": 3}


def test_keras3_leaderboard_version_1_draws_are_the_committed_grids():
    """Version 1 of the space still draws trials 1-3 of the committed ml-1m grid (which
    started before versions), for every loss: a change to the space or the sampler that
    would move a resumed grid's draws fails here."""
    import json
    import pathlib

    import pandas as pd

    from benchmarks import keras3_leaderboard as lb

    folder = pathlib.Path(__file__).parents[1] / "benchmarks" / "results" / "k3-ml1m"
    runs = pd.read_csv(folder / lb.RUNS_FILE)
    base = json.loads((folder / lb.GRID_FILE).read_text())["base"]
    drawn = runs[(runs.phase == "tune") & (runs.trial > 0)]
    assert len(drawn) == 21
    for row in drawn.itertuples():
        assert lb.trial_params(row.loss, row.trial, base, 1) == json.loads(row.params), row


def test_keras3_leaderboard_trials_share_the_common_settings():
    """A trial draws the settings every loss has once (a paired design), each loss's own
    options apart; trial 0 is --base over BASE."""
    from benchmarks import keras3_leaderboard as lb
    from tfcro.experiments.space import SEARCH_SPACE

    shared = [k for k, v in SEARCH_SPACE.items() if "losses" not in v]
    first = {loss: lb.trial_params(loss, 1, {}, 2) for loss in lb.LOSSES}
    for params in first.values():
        assert {k: params[k] for k in shared} == {k: first["softmax"][k] for k in shared}
    assert set(first["cro"]) - set(shared) == {"alpha", "kernel"}
    assert set(first["softmax"]) == set(shared)
    assert first["cro"]["alpha"] != first["cro-lambda"]["alpha"]  # own draws per loss
    second = lb.trial_params("softmax", 2, {}, 2)
    assert second != first["softmax"] and second == lb.trial_params("softmax", 2, {}, 2)
    assert lb.trial_params("bsl", 0, {"scale": 9.0}, 2) == {**lb.BASE, "scale": 9.0}
