"""The README's commands, checked the way a newcomer would run them."""

import os
import re
import subprocess

import pytest

from tests import cli


def _read(path):
    with open(os.path.join(cli.ROOT, path), encoding="utf-8") as handle:
        return handle.read()


def _quickstart_commands():
    readme = _read("README.md")
    section = readme[readme.index("## Quickstart") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_quickstart_is_two_commands_and_ci_runs_the_test_one():
    commands = _quickstart_commands()
    assert commands == ["./run main", "./run test"]
    ci = [
        line.strip()
        for line in _read(".ci/run").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ci[-1] == commands[1]


def test_run_script_creates_the_environment_and_knows_both_jobs():
    script = _read("run")
    assert (
        "-m venv" in script
        and 'pip install --quiet -e ".[dev,plots,tune,serving,keras3]"' in script
    )
    assert "main)" in script and "test)" in script and "pipelines.main" in script
    assert os.access(os.path.join(cli.ROOT, "run"), os.X_OK)
    assert os.access(os.path.join(cli.ROOT, ".ci", "run"), os.X_OK)
    usage = subprocess.run([os.path.join(cli.ROOT, "run"), "help"], capture_output=True, text=True)
    assert usage.returncode == 2 and "./run main" in usage.stdout


def test_pins_match_the_working_set():
    from tfcro import WORKING_SET

    setup = _read("setup.cfg")
    for name, version in WORKING_SET.items():
        assert f"{name}=={version}" in setup, name


MODULES = sorted({m for m in re.findall(r"python -m (pipelines\.\w+)", _read("README.md"))})


@pytest.mark.parametrize("module", MODULES)
def test_every_pipeline_in_the_readme_has_help(module):
    proc = cli.run_module(module, "--help", env=cli.environ(TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def _documented_commands(text):
    """``(job, flags)`` of every ``-m pipelines.<job> ...`` in text, ``\\`` continuations joined."""
    commands = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.search(r"-m (pipelines\.\w+)(.*)", line)
        if not match:
            continue
        rest = match.group(2)
        while rest.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            rest = rest.rstrip()[:-1] + " " + lines[i]
        rest = re.split(r"`|\s#", rest)[0]  # the end of inline code, or a shell comment
        commands.append((match.group(1), re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest)))
    return commands


DOCUMENTED = [
    "README.md",
    *(
        os.path.join("docs", f)
        for f in sorted(os.listdir(os.path.join(cli.ROOT, "docs")))
        if f.endswith(".md")
    ),
]


@pytest.mark.parametrize("path", DOCUMENTED)
def test_documented_pipeline_flags_exist_and_use_the_canonical_spelling(path):
    """Every flag shown for a pipeline exists; outside the recorded benchmark commands
    (kept verbatim, valid through the former spellings) it is the canonical spelling."""
    import importlib

    import pipelines

    documents = [(path, _read(path))]
    if path == "README.md":  # and the examples in the jobs' own docstrings
        folder = os.path.join(cli.ROOT, "pipelines")
        documents += [
            (f"pipelines/{f}", _read(os.path.join("pipelines", f)))
            for f in sorted(os.listdir(folder))
            if f.endswith(".py")
        ]
    assert pipelines  # imported first: the package of the jobs
    for where, text in documents:
        for module, flags in _documented_commands(text):
            parser = importlib.import_module(module).build_parser()
            for flag in flags:
                action = parser._option_string_actions.get(flag)
                assert action is not None, f"{where}: {module} has no {flag}"
                canonical = next(s for s in action.option_strings if s.startswith("--"))
                if path != os.path.join("docs", "benchmarks.md"):
                    assert flag == canonical, f"{where}: {module} {flag} -> {canonical}"
