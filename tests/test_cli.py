"""The pipelines' command lines: one spelling per concept, a quiet start, log-friendly output."""

import importlib
import io
import re

import pytest

import pipelines
from pipelines import _cli
from tests import cli

JOBS = ("train", "evaluate", "export", "retrieve", "reproduce", "main")

# TensorFlow's C++ log lines: TSL's "2025-01-01 12:00:00.123456: I path/file.cc:12] ..."
# and absl's "I0000 00:00:1700000000.123456   1234 file.cc:12] ...", and absl's notice.
TF_CPP_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]"
    r"|[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\))",
    re.M,
)


def _parser(job):
    return importlib.import_module(f"pipelines.{job}").build_parser()


def _env(**extra):
    """This environment without the TensorFlow log settings that tests/conftest.py sets."""
    return cli.environ(without=("TF_CPP_MIN_LOG_LEVEL",), PYTHONUNBUFFERED="1", **extra)


def _run(module, *args, env=None):
    return cli.run_module(module, *args, env=_env() if env is None else env)


# ------------------------------------------------------------------ one name, old aliases

# (job, canonical, former spelling, value, attribute, what else the job requires)
ALIASES = [
    ("train", "--run-dir", "--output-dir", "runs/x", "run_dir", []),
    (
        "export",
        "--export-dir",
        "--output-dir",
        "saved_models/x",
        "export_dir",
        ["--run-dir", "runs/x"],
    ),
    ("evaluate", "--search", "--method", "scann", "search", ["--run-dir", "runs/x"]),
    ("reproduce", "--losses", "--methods", "softmax,cro", "losses", []),
]


@pytest.mark.parametrize(
    "job,canonical,alias,value,dest,required", ALIASES, ids=[f"{a[0]}{a[2]}" for a in ALIASES]
)
def test_former_spelling_parses_like_the_canonical_flag(
    job, canonical, alias, value, dest, required
):
    parser = _parser(job)
    new = parser.parse_args([*required, canonical, value])
    old = parser.parse_args([*required, alias, value])
    assert getattr(old, dest) == getattr(new, dest)
    assert vars(old) == vars(new)


@pytest.mark.parametrize(
    "job,canonical,alias,value,dest,required", ALIASES, ids=[f"{a[0]}{a[2]}" for a in ALIASES]
)
def test_help_shows_the_canonical_flag(job, canonical, alias, value, dest, required):
    text = _parser(job).format_help()
    usage = text[: text.index("\n\n")]
    assert canonical in usage and alias not in usage
    # the option list names the canonical spelling first, the former one after it
    entry = rf"^  {re.escape(canonical)} \S+, {re.escape(alias)} \S+"
    assert re.search(entry, text, re.M), text


def test_one_concept_one_spelling_across_the_jobs():
    for job in JOBS:
        for action in _parser(job)._actions:
            first = next((s for s in action.option_strings if s.startswith("--")), None)
            if action.dest == "run_dir":
                assert first == "--run-dir", job
            if action.dest == "export_dir":
                assert first == "--export-dir", job
            if action.dest == "search":
                assert first == "--search", job
            if action.dest == "verbose":
                assert action.choices == [0, 1, 2], job
    # the run folder of a training run is --run-dir wherever a job reads or writes one
    for job in ("train", "evaluate", "export"):
        assert "--run-dir" in _parser(job)._option_string_actions, job
    for job in ("train", "export", "retrieve", "main"):
        assert "--export-dir" in _parser(job)._option_string_actions, job


def test_every_job_has_verbose():
    defaults = {job: _parser(job).get_default("verbose") for job in JOBS}
    # None: chosen at run time by fit_verbosity (progress bars on a terminal only)
    assert defaults == {
        "train": None,
        "main": None,
        "reproduce": 0,
        "evaluate": 1,
        "export": 1,
        "retrieve": 1,
    }


# ------------------------------------------------------------------ output for logs


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def test_fit_verbosity_progress_bars_only_on_a_terminal():
    assert _cli.fit_verbosity(None, _Stream(True)) == 1
    assert _cli.fit_verbosity(None, _Stream(False)) == 2
    for given in (0, 1, 2):  # an explicit --verbose always wins
        assert _cli.fit_verbosity(given, _Stream(True)) == given
        assert _cli.fit_verbosity(given, _Stream(False)) == given
    closed = io.StringIO()
    closed.close()  # isatty() raises ValueError
    assert _cli.fit_verbosity(None, closed) == 2
    assert _cli.fit_verbosity(None, object()) == 2  # no isatty at all


def test_verbose_2_on_the_command_line_asks_for_the_tensorflow_log():
    wants = pipelines._wants_tf_log
    assert wants(["--verbose", "2"]) and wants(["--epochs", "1", "--verbose=2"])
    assert not wants([]) and not wants(["--verbose", "1"]) and not wants(["--verbose"])
    assert not wants(["--verbose=1", "2"]) and not wants(["--epochs", "2"])


def test_cli_starts_quietly_unless_asked():
    quiet = _run("pipelines.train", "--help")
    assert quiet.returncode == 0 and "usage:" in quiet.stdout, quiet.stderr[-2000:]
    assert not TF_CPP_LINE.search(quiet.stderr), quiet.stderr[-2000:]
    # the caller's own setting wins over the package default
    loud = _run("pipelines.train", "--help", env=_env(TF_CPP_MIN_LOG_LEVEL="0"))
    assert loud.returncode == 0 and TF_CPP_LINE.search(loud.stderr), loud.stderr[-2000:]
    # and --verbose 2 brings the log back too
    verbose = _run("pipelines.evaluate", "--verbose", "2", "--help")
    assert verbose.returncode == 0 and TF_CPP_LINE.search(verbose.stderr), verbose.stderr[-2000:]


@pytest.mark.slow
def test_training_to_a_pipe_prints_one_line_per_epoch_and_no_tensorflow_log(tmp_path):
    proc = _run("pipelines.train", *cli.flags(cli.SIZES, cli.TWO_EPOCHS, run_dir=tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "\r" not in proc.stdout and "\x08" not in proc.stdout  # no progress-bar refreshes
    epochs = re.findall(r"^\d+/\d+ - .*loss: ", proc.stdout, re.M)
    assert len(epochs) == 2 and proc.stdout.count("Epoch ") == 2, proc.stdout[-3000:]
    assert "Test metrics" in proc.stdout
    # no C++ start-up lines (CUDA probing, cuInit, CPU features) on stderr
    assert not TF_CPP_LINE.search(proc.stderr), proc.stderr[-3000:]
    assert "cuInit" not in proc.stderr and "cpu_feature_guard" not in proc.stderr
