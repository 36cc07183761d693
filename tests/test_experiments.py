"""tfcro.experiments as a package: its re-exports, docstring examples, argument
checks, and the runner's resumability without training (no model is built here)."""

from __future__ import annotations

import doctest
import json
import math
import os
import subprocess
import sys

import pytest

from tfcro import experiments as ex
from tfcro.experiments import grids, plots, presets, results, runner, space, tables
from tfcro.runfolder import METRICS_FILE


def test_package_reexports_every_public_name():
    modules = (grids, presets, runner, results, tables, plots)
    assert len(ex.__all__) == len(set(ex.__all__))
    for name in ex.__all__:
        value = getattr(ex, name)
        assert any(getattr(m, name, None) is value for m in modules), name
    # the names pipelines/reproduce.py, benchmarks and the docstring example use
    for name in (
        "make_grid",
        "preset_config",
        "cell_config",
        "cell",
        "run_grids",
        "results_frame",
        "write_tables",
        "plot_grid",
        "markdown_table",
        "markdown_deltas",
        "paired_deltas",
        "chosen_settings",
        "EXPERIMENTS",
        "PRESETS",
        "ALPHAS",
        "TABLE2_METHODS",
        "TABLE3_KERNELS",
        "PAPER_MARGIN",
        "DEFAULT_LEARNING_RATES",
    ):
        assert name in ex.__all__, name


@pytest.mark.parametrize("module", [grids, results, runner, space, tables])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, module.__name__


def test_runner_does_not_import_matplotlib():
    code = (
        "import sys, tfcro\n"
        "from tfcro.experiments import runner\n"
        "from tfcro import experiments\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "print('OK')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


# ----------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "name, values",
    [
        ("alphas", [0.0]),
        ("alphas", [float("nan")]),
        ("alphas", [1.0, float("inf")]),
        ("alphas", []),
        ("learning_rates", [0.0]),
        ("learning_rates", [float("inf")]),
        ("learning_rates", [0.01, -0.01]),
    ],
)
def test_positive_float_lists_name_the_parameter(name, values):
    with pytest.raises(ValueError, match=f"`{name}` should be floats > 0. Received: {name}="):
        ex.make_grid("table3", **{name: values})


def test_choices_are_checked_with_the_shared_wording():
    with pytest.raises(ValueError, match=r"`experiment` should be one of \['table2'"):
        ex.make_grid("table9")
    with pytest.raises(ValueError, match="`methods` should be a non-empty subset of"):
        ex.make_grid("table2", methods=[])
    with pytest.raises(ValueError, match="`kernels` should be a non-empty subset of"):
        ex.make_grid("table3", kernels=["cosine", "hinge"])
    with pytest.raises(ValueError, match=r"`layout` should be one of \['rows', 'alpha'\]"):
        ex.Grid("g", "t", (), layout="columns")
    with pytest.raises(ValueError, match="`dataset_preset` should be one of"):
        ex.preset_config("ml-20m")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"seeds": []}, "seeds"),
        ({"seeds": [0, 0]}, "seeds"),
        ({"seeds": [0], "max_runs": -1}, "max_runs"),
        ({"seeds": [0], "max_runs": 1.5}, "max_runs"),
        ({"seeds": [0, 1], "tune_seeds": 0}, "tune_seeds"),
        ({"seeds": [0, 1], "tune_seeds": 3}, "tune_seeds"),
    ],
)
def test_run_grids_bad_arguments(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ex.run_grids([], ex.preset_config("synthetic"), output_dir=str(tmp_path), **kwargs)


# ----------------------------------------------------------------------------- resumability


def _finished(output_dir, cell, lr, seed, **metrics):
    path = ex.run_dir(output_dir, cell, lr, seed)
    os.makedirs(path)
    with open(os.path.join(path, METRICS_FILE), "w", encoding="utf-8") as handle:
        json.dump(metrics, handle)
    return path


def _no_data(config):
    raise AssertionError(f"loaded a split for seed {config.seed}: a finished run was retrained")


def test_finished_runs_are_read_back_never_trained(tmp_path):
    out = str(tmp_path)
    grid = ex.make_grid("table2", methods=["softmax"], learning_rates=(0.001, 0.01))
    c = grid.cells[0]
    # seed 0 tunes: 0.01 wins on validation; seed 1 runs only the chosen rate
    _finished(out, c, 0.001, 0, **{"val_recall@100": 0.2, "recall@10": 0.1})
    _finished(out, c, 0.01, 0, **{"val_recall@100": 0.3, "recall@10": 0.2})
    _finished(out, c, 0.01, 1, **{"val_recall@100": 0.5, "recall@10": 0.4})
    messages = []
    res = ex.run_grids(
        [grid],
        ex.preset_config("synthetic"),
        seeds=(0, 1),
        output_dir=out,
        tune_seeds=1,
        data_loader=_no_data,
        log=messages.append,
    )
    result = res["table2"]
    assert messages == []
    assert result.chosen_lr == {c: 0.01}
    assert result.tuning[c] == {0.001: pytest.approx(0.2), 0.01: pytest.approx(0.3)}
    assert [(r.learning_rate, r.seed, r.metrics["recall@10"]) for r in result.runs[c]] == [
        (0.01, 0, 0.2),
        (0.01, 1, 0.4),
    ]
    assert not os.path.exists(ex.run_dir(out, c, 0.001, 1))
    frame = ex.results_frame(grid, result, ks=(10,))
    assert frame.iloc[0]["seeds"] == 2 and frame.iloc[0]["recall@10_mean"] == pytest.approx(0.3)


def test_max_runs_zero_trains_nothing_and_reports_missing_runs(tmp_path):
    out = str(tmp_path)
    grid = ex.make_grid("table4")
    done = grid.cells[0]
    _finished(out, done, 0.005, 0, **{"val_recall@100": 0.4, "recall@10": 0.3})
    res = ex.run_grids(
        [grid],
        ex.preset_config("synthetic"),
        seeds=(0,),
        output_dir=out,
        max_runs=0,
        data_loader=_no_data,
        log=lambda m: None,
    )["table4"]
    assert res.chosen_lr[done] == 0.005 and res.runs[done][0].metrics["recall@10"] == 0.3
    for c in grid.cells[1:]:
        assert res.chosen_lr[c] is None and res.runs[c] == []
        assert math.isnan(res.tuning[c][0.005])
        assert not os.path.exists(ex.run_dir(out, c, 0.005, 0))


def test_alpha_choice_table_picks_on_validation_and_shows_test_beside():
    import pandas as pd

    rows = []
    for alpha, val20, test20, val100, test100 in (
        (0.8, 0.10, 0.20, 0.50, 0.61),
        (1.2, 0.12, 0.19, 0.40, 0.60),
    ):
        for seed, noise in ((0, -0.01), (1, 0.01)):
            rows.append(
                {
                    "alpha": alpha,
                    "seed": seed,
                    "val_recall@20": val20,
                    "recall@20": test20 + noise,
                    "val_recall@100": val100,
                    "recall@100": test100,
                }
            )
    lines = ex.alpha_choice_table(pd.DataFrame(rows), [20, 100])
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    # N=20: validation picks 1.2 (test 0.19) though 0.8 is better on test (0.20)
    assert cells[0][:4] == ["20", "1.2", "0.1900", "0.8"]
    assert cells[0][4] == "0.8: 0.2000 ± 0.0141, 1.2: 0.1900 ± 0.0141"
    assert cells[1][:4] == ["100", "0.8", "0.6100", "0.8"]
    assert cells[1][4] == "0.8: 0.6100 ± 0.0000, 1.2: 0.6000 ± 0.0000"
    assert len(cells[0]) == 5  # no reference: no paired columns

    # a reference with seeds 0 and 1: paired to the chosen alpha seed by seed
    reference = pd.DataFrame(
        {"seed": [0, 1], "recall@20": [0.17, 0.20], "recall@100": [0.60, 0.62]}
    )
    lines = ex.alpha_choice_table(pd.DataFrame(rows), [20, 100], reference, "softmax")
    assert "softmax test Recall@N" in lines[0] and lines[1].count("|---") == 7
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    # N=20: 1.2 gives 0.18 and 0.20 against 0.17 and 0.20: +0.005 ± 0.0071, +2.7% of 0.185
    assert cells[0][5:] == ["0.1850 ± 0.0212", "+0.0050 ± 0.0071 (+2.7%)"]
    assert cells[1][5:] == ["0.6100 ± 0.0141", "+0.0000 ± 0.0141 (+0.0%)"]
    # only the seeds the reference has are compared
    lines = ex.alpha_choice_table(pd.DataFrame(rows), [20], reference.iloc[:1], "softmax")
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[2] == "0.1800" and cells[5:] == ["0.1700", "+0.0100 (+5.9%)"]
