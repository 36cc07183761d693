"""Tuning (Optuna studies per loss, resumable, validation only), the chosen settings over
seeds, the report, and presets on the command line."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from pipelines import train as train_cli
from pipelines import tune as tune_cli
from pipelines._cli import explicit_options, parse_with_preset
from tests import cli
from tests.test_recipe import _config, pairs_dir  # noqa: F401  (the fixture)
from tfcro import experiments as ex
from tfcro.experiments import tuning
from tfcro.training import TrainingConfig
from tfcro.training.presets import PRESETS, preset_settings

optuna = pytest.importorskip("optuna")


# ----------------------------------------------------------------------------- search space


class _FixedTrial:
    """The part of ``optuna.Trial`` that :func:`tuning.suggest` uses, with set answers."""

    def __init__(self, values):
        self.values = values

    def suggest_float(self, name, low, high, log=False):
        assert low <= self.values[name] <= high
        return self.values[name]

    def suggest_categorical(self, name, choices):
        assert self.values[name] in choices
        return self.values[name]


def test_the_space_adds_alpha_and_kernel_for_croloss_only():
    assert "alpha" not in tuning.space_for("softmax")
    assert {"alpha", "kernel", "learning_rate", "scale"} <= set(tuning.space_for("cro-lambda"))


def test_a_trial_config_places_each_setting():
    base = TrainingConfig(model={"loss": "softmax", "loss_options": {}})
    trial = _FixedTrial(
        {
            "learning_rate": 0.02,
            "embedding_l2": 1e-4,
            "scale": 12.0,
            "logq_correction": True,
            "in_batch_negatives": False,
            "num_negatives": 512,
            "alpha": 1.2,
            "kernel": "sigmoid",
        }
    )
    params = tuning.suggest(trial, "cro-lambda")
    config = tuning.trial_config(base, "cro-lambda", params)
    assert config.learning_rate == 0.02
    assert config.model["embedding_l2"] == 1e-4 and config.model["scale"] == 12.0
    assert config.model["logq_correction"] is True
    assert config.model["in_batch_negatives"] is False and config.model["num_negatives"] == 512
    assert config.model["loss"] == "cro-lambda"
    assert config.model["loss_options"] == {
        "weight_kernel": "sigmoid",
        "kernel": "sigmoid",
        "alpha": 1.2,
    }
    softmax = tuning.trial_config(config, "softmax", {"learning_rate": 0.01})
    assert softmax.model["loss"] == "softmax" and softmax.model["loss_options"] == {}


def test_the_same_parameters_give_the_same_run_folder():
    one = tuning.params_key({"learning_rate": 0.01, "scale": 10.0})
    assert one == tuning.params_key({"scale": 10.0, "learning_rate": 0.01})
    assert one != tuning.params_key({"scale": 10.0, "learning_rate": 0.02})


def test_paired_differences_pair_the_seeds():
    frame = pd.DataFrame(
        {
            "loss": ["softmax", "softmax", "cro", "cro"],
            "seed": [1, 2, 1, 2],
            "recall@20": [0.10, 0.12, 0.11, 0.14],
        }
    )
    deltas = ex.paired_differences(frame, ["recall@20"])
    row = deltas.iloc[0]
    assert row["loss"] == "cro" and row["delta"] == pytest.approx(0.015)
    assert row["std"] == pytest.approx(np.std([0.01, 0.02], ddof=1))
    assert row["relative"] == pytest.approx(0.015 / 0.11)
    twice = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)  # cro seed 1 twice
    with pytest.raises(ValueError, match=r"one run per \(loss, seed\).*\('cro', 1\)"):
        ex.paired_differences(twice, ["recall@20"])
    # two series by seed: only the shared seeds pair
    ours = pd.Series([0.11, 0.14, 0.5], index=[1, 2, 9])
    pair = ex.paired_difference(ours, pd.Series([0.10, 0.12, 0.3], index=[1, 2, 3]))
    assert pair["seeds"] == 2 and pair["delta"] == pytest.approx(0.015)
    assert pair["relative"] == pytest.approx(0.015 / 0.11)
    with pytest.raises(ValueError, match=r"`reference` should hold one value per seed.*\[1, 1\]"):
        ex.paired_difference(ours, pd.Series([0.1, 0.2], index=[1, 1]))


def test_tuning_refuses_a_run_without_validation(tmp_path):
    with pytest.raises(ValueError, match="valid_fraction"):
        tuning.tune(TrainingConfig(valid_fraction=0.0), ["softmax"], str(tmp_path))
    with pytest.raises(ValueError, match="`losses`"):
        tuning.tune(TrainingConfig(), ["nope"], str(tmp_path))


# ----------------------------------------------------------------------------- studies


@pytest.mark.slow
def test_tune_gives_every_loss_the_same_budget_and_resumes(tmp_path, pairs_dir):  # noqa: F811
    base = _config(pairs_dir, epochs=2, refit=True)
    space = {k: v for k, v in tuning.SEARCH_SPACE.items() if k in ("learning_rate", "alpha")}
    calls = []

    def counting_train(config, run_dir, **kwargs):
        calls.append(run_dir)
        assert not config.refit  # trials are selection runs
        from tfcro.training import train

        return train(config, run_dir, **kwargs)

    out = str(tmp_path / "tune")
    frame = tuning.tune(
        base, ["softmax", "cro"], out, trials=2, space=space, train_fn=counting_train
    )
    assert len(calls) == 4
    for loss in ("softmax", "cro"):
        rows = frame[frame["loss"] == loss]
        assert set(rows["state"]) <= {"COMPLETE", "PRUNED"} and len(rows) == 2
    assert {"learning_rate"} <= set(frame.columns) and frame["value"].notna().all()
    for name in (tuning.TRIALS_FILE, tuning.REPORT_FILE, tuning.STUDY_FILE, tuning.PLOT_FILE):
        assert os.path.isfile(os.path.join(out, name))
    best = tuning.best_params(out)
    assert set(best) == {"softmax", "cro"} and "alpha" in best["cro"]["params"]
    # the budget is met: a rerun trains nothing more
    tuning.tune(base, ["softmax", "cro"], out, trials=2, space=space, train_fn=counting_train)
    assert len(calls) == 4
    # seeds of the chosen settings, with their refit
    seeds = tuning.run_seeds(base, out, [3, 4])
    assert len(seeds) == 4 and set(seeds["seed"]) == {3, 4}
    assert os.path.isdir(os.path.join(out, "cro", "seed-3", "refit"))
    assert os.path.isfile(os.path.join(out, tuning.SEEDS_PLOT_FILE))
    report = open(os.path.join(out, tuning.REPORT_FILE)).read()
    paired = report.split("Paired differences to softmax")[1]
    assert "| loss | seeds | recall@5 | ndcg@5 | recall@10 | ndcg@10 |" in paired
    assert "| cro | 2 | " in paired
    # which alpha for which N, chosen on validation
    sweep = tuning.alpha_sweep(base, out, [0.8, 1.2], loss="cro", seeds=[3])
    assert sorted(sweep["alpha"]) == [0.8, 1.2]
    assert {"val_recall@5", "val_recall@10", "recall@5", "recall@10"} <= set(sweep.columns)
    table = open(os.path.join(out, "alpha.md")).read()
    assert "| 5 |" in table and "| 10 |" in table
    with pytest.raises(ValueError, match="no finished tuning of 'cro-lambda'"):
        tuning.alpha_sweep(base, out, [1.0], loss="cro-lambda")


def test_an_interrupted_trial_is_queued_again_with_its_parameters(tmp_path):
    out = str(tmp_path)
    study = tuning._study(optuna, out, "softmax", seed=0)
    trial = study.ask()
    trial.suggest_float("learning_rate", 1e-3, 5e-2, log=True)  # then the process dies
    again = tuning._study(optuna, out, "softmax", seed=0)
    assert tuning._requeue_interrupted(optuna, again) == 1
    states = [t.state.name for t in again.get_trials()]
    assert states == ["FAIL", "WAITING"]
    queued = again.get_trials()[1]
    assert queued.system_attrs["fixed_params"] == trial.params
    assert tuning._requeue_interrupted(optuna, again) == 0  # already queued: not twice


def test_a_crashed_trial_is_retried_once(tmp_path):
    study = tuning._study(optuna, str(tmp_path), "softmax", seed=0)

    def crash(trial):
        trial.suggest_float("learning_rate", 1e-3, 5e-2, log=True)
        raise RuntimeError("the process died here")

    with pytest.raises(RuntimeError):
        study.optimize(crash, n_trials=1, catch=())
    params = study.get_trials()[0].params
    assert tuning._requeue_interrupted(optuna, study) == 1  # first error: retried
    with pytest.raises(RuntimeError):
        study.optimize(crash, n_trials=1, catch=())
    assert study.get_trials()[1].params == params  # the queued parameters ran again
    assert tuning._requeue_interrupted(optuna, study) == 0  # second error: not again
    assert [t.state.name for t in study.get_trials()] == ["FAIL", "FAIL"]


def test_pruning_stops_the_run_and_says_so():
    class Trial:
        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) >= 2

    class Model:
        stop_training = False

    callback = tuning.PruningCallback(Trial(), "recall@20")
    callback.set_model(Model())
    callback.on_epoch_end(0, {"val_recall@20": 0.1})
    assert not callback.pruned
    callback.on_epoch_end(1, {"loss": 1.0})  # no validation this epoch: nothing reported
    callback.on_epoch_end(2, {"val_recall@20": 0.05})
    assert callback.pruned and callback.model.stop_training
    assert callback.trial.reported == [(0, 0.1), (2, 0.05)]


# ----------------------------------------------------------------------------- presets


def test_a_preset_sets_defaults_and_explicit_flags_win():
    parser = train_cli.build_parser()
    args = parse_with_preset(parser, ["--preset", "cf", "--learning-rate", "0.001"])
    assert args.learning_rate == 0.001  # explicit, although it is the flag's default
    assert args.user_tower == "id" and args.embedding_dim == 64
    config = train_cli.config_from_args(args)
    assert config.protocol == "collaborative" and config.model["user_tower"] == "id"
    assert config.model["logq_correction"] and not config.model["in_batch_negatives"]
    assert config.model["num_negatives"] == 512 and config.optimizer == "adam"
    plain = parse_with_preset(parser, ["--preset", "cf", "--no-logq", "--in-batch-negatives"])
    plain_config = train_cli.config_from_args(plain)
    assert not plain_config.model["logq_correction"]
    assert plain_config.model["in_batch_negatives"]
    assert not train_cli.config_from_args(parser.parse_args([])).model["logq_correction"]
    old = parse_with_preset(parser, ["--preset", "cf", "--use-user-id"])
    assert train_cli.config_from_args(old).model["user_tower"] == "id+history"
    assert explicit_options(parser, ["--epochs", "3"]) == {"epochs"}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_names_real_options_and_builds_a_config(name):
    parser = train_cli.build_parser()
    dests = {action.dest for action in parser._actions}
    assert set(preset_settings(name)) <= dests
    train_cli.config_from_args(parse_with_preset(parser, ["--preset", name]))


def test_an_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match=r"`preset` should be one of .*Received: preset='x'"):
        preset_settings("x")
    proc = cli.run_module("pipelines.train", "--preset", "x")
    assert proc.returncode == 2 and "--preset" in proc.stderr and "Traceback" not in proc.stderr


def test_tune_cli_parses_its_options():
    args = tune_cli.build_parser().parse_args(
        ["--losses", "softmax,cro", "--trials", "3", "--seeds", "1,2", "--tune-dir", "x"]
    )
    assert (args.losses, args.trials, args.seeds, args.tune_dir) == (
        ["softmax", "cro"],
        3,
        [1, 2],
        "x",
    )


def test_tune_cli_refuses_a_negative_budget(tmp_path):
    with pytest.raises(SystemExit) as stop:
        tune_cli.main(["--trials", "-1", "--tune-dir", str(tmp_path / "t")])
    assert stop.value.code == 2


class _Result:
    def __init__(self, epochs):
        self.epochs_selected = self.epochs_run = epochs


def _fake_train(config, run_dir, **kwargs):
    """Writes a run folder's metrics.json as train() would, with a made-up validation
    value that depends on the settings; no training."""
    os.makedirs(run_dir, exist_ok=True)
    value = 0.1 - abs(np.log(config.learning_rate / 0.01)) / 100
    with open(os.path.join(run_dir, "metrics.json"), "w") as f:
        json.dump({f"val_{config.monitor}": value}, f)
    return _Result(2)


def test_a_resumed_study_draws_new_settings_and_keeps_the_budget(tmp_path):
    base = TrainingConfig(monitor="recall@10")
    space = {"learning_rate": tuning.SEARCH_SPACE["learning_rate"]}
    out = str(tmp_path)
    tuning.tune(base, ["softmax"], out, trials=2, space=space, train_fn=_fake_train)
    tuning.tune(base, ["softmax"], out, trials=4, space=space, train_fn=_fake_train)
    frame = tuning.trials_frame(out)
    assert len(frame) == 4 and frame["learning_rate"].nunique() == 4  # no replayed draws
    best = tuning.best_params(out)["softmax"]
    assert best["params"].keys() == {"learning_rate"}
    assert best["value"] == pytest.approx(frame["value"].max())


def test_a_trial_without_a_validation_value_stops_the_tuning(tmp_path):
    def no_value(config, run_dir, **kwargs):
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "metrics.json"), "w") as f:
            json.dump({}, f)
        return _Result(1)

    with pytest.raises(ValueError, match="no validation recall@10"):
        tuning.tune(
            TrainingConfig(monitor="recall@10"), ["softmax"], str(tmp_path), train_fn=no_value
        )


def test_a_setting_with_no_home_is_a_clear_error():
    with pytest.raises(ValueError, match="'margin_x' is neither"):
        tuning.trial_config(TrainingConfig(), "softmax", {"margin_x": 1.0})
    config = tuning.trial_config(TrainingConfig(), "sl-at-k", {"top_k": 50, "epochs": 3})
    assert config.model["loss_options"]["top_k"] == 50 and config.epochs == 3


def test_a_study_keeps_the_search_space_version_it_started_with(tmp_path):
    from tfcro.experiments import space as space_lib

    base = TrainingConfig(monitor="recall@10")

    def studies(folder):
        storage = f"sqlite:///{os.path.abspath(os.path.join(folder, tuning.STUDY_FILE))}"
        return {
            s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
            for s in optuna.get_all_study_summaries(storage)
        }

    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    # a study started before versions: trials, no record; its folder resumes on version 1,
    # a loss added to it too
    lr_only = {"learning_rate": space_lib.search_space(1)["learning_rate"]}
    tuning.tune(base, ["cro"], old, trials=1, space=lr_only, train_fn=_fake_train)
    assert "search_space" not in studies(old)["tune-cro"].user_attrs
    tuning.tune(base, ["cro", "cro-lambda"], old, trials=2, train_fn=_fake_train)
    for study in studies(old).values():
        assert study.user_attrs["search_space"] == 1
        assert study.trials[-1].distributions["kernel"].choices == ("softplus", "sigmoid")
    with pytest.raises(ValueError, match="draws from search space version 1.*search_space=2"):
        tuning.tune(base, ["softmax"], old, trials=1, search_space=2, train_fn=_fake_train)
    # a new folder takes the latest version and records it
    tuning.tune(base, ["cro"], new, trials=1, train_fn=_fake_train)
    study = studies(new)["tune-cro"]
    assert study.user_attrs["search_space"] == space_lib.LATEST_SPACE_VERSION
    assert "exponential" in study.trials[-1].distributions["kernel"].choices
    assert 4096 in study.trials[-1].distributions["num_negatives"].choices
    with pytest.raises(ValueError, match=r"`search_space` should be one of \[1, 2, 3\]"):
        tuning.tune(base, ["cro"], str(tmp_path / "x"), trials=1, search_space=7)
    with pytest.raises(ValueError, match="not both"):
        tuning.tune(base, ["cro"], new, trials=1, space=lr_only, search_space=2)


def test_tune_cli_refuses_an_unknown_search_space(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        tune_cli.main(["--trials", "0", "--search-space", "9", "--tune-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert "`--search-space` should be one of [1, 2, 3]. Received: --search-space=9" in (
        capsys.readouterr().err
    )


def test_search_space_versions_differ_only_where_documented():
    from tfcro.experiments import space as space_lib

    v1, v2, v3 = (space_lib.search_space(v) for v in (1, 2, 3))
    assert space_lib.SEARCH_SPACE is v3 and space_lib.LATEST_SPACE_VERSION == 3

    def without(space, *names):
        return {k: v for k, v in space.items() if k not in names}

    # v2 = v1 + the exponential kernel; v3 = v2 + 4,096 negatives
    assert without(v1, "kernel") == without(v2, "kernel")
    assert "exponential" not in v1["kernel"]["choices"]
    assert v2["kernel"]["choices"] == ("softplus", "sigmoid", "exponential")
    assert without(v2, "num_negatives") == without(v3, "num_negatives")
    assert v1["num_negatives"] == v2["num_negatives"] == {"choices": (512, 1024, 2048)}
    assert v3["num_negatives"]["choices"] == (512, 1024, 2048, 4096)
    assert space_lib.resolve_version(None, None, "here") == 3
    assert space_lib.resolve_version(1, None, "here") == 1
    assert space_lib.resolve_version(2, None, "here") == 2
    assert space_lib.resolve_version(None, 1, "here") == 1
    for bad in (0, True, "2", 4):
        with pytest.raises(ValueError, match="Received: search_space="):
            space_lib.search_space(bad)
    with pytest.raises(ValueError, match="here records search space version 4"):
        space_lib.resolve_version(4, None, "here")
