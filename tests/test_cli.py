"""The command line as a user runs it: subprocesses in a temporary directory."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

ENTRY = str(REPO / "run_recbole_compress.py")


def run(*args, cwd):
    return subprocess.run([sys.executable, ENTRY, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_cli_runs_and_writes_summary(tmp_path):
    out = run("--model=BPR", "--dataset=ml-100k", "--epochs=1", "--show_progress=False", f"--output_dir={tmp_path}/run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model"] == "BPR" and summary["epochs"] == 1
    assert (tmp_path / "run" / "model.pt").is_file()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model=NoSuchModel", "--dataset=ml-100k"], ["unknown model", "NoSuchModel"]),
        (["--model=BPR", "--dataset=nosuchdata"], ["nosuchdata", "convert"]),
        (["--model=LightGCN_LTH", "--dataset=ml-100k", "--prune_rate=1.5"], ["prune_rate", "(0, 1)"]),
        (["--model=LightGCN_LTH", "--dataset=ml-100k", "--prune_rounds=0"], ["prune_rounds"]),
        (["--model=BPR", "--dataset=ml-100k", "--config_files=missing.yaml"], ["missing.yaml"]),
        (["--model=Pop_LTH", "--dataset=ml-100k"], ["no user/item embedding table"]),
        (
            ["--model=BPR_LTH", "--dataset=ml-100k", "--prune_rate=0.1", "--prune_rounds=2", "--target_sparsity=0.9"],
            ["unreachable", "prune_rounds"],
        ),
    ],
)
def test_bad_input_one_line_error_nonzero_exit(tmp_path, args, words, monkeypatch, capsys):
    from recbole_compress.cli import legacy_main  # in-process: the handler, not the interpreter, makes the exit

    monkeypatch.chdir(tmp_path)
    assert legacy_main([*args, "--epochs=1", "--show_progress=False"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: "), err[-2000:]
    for word in words:
        assert word in last
    assert "Traceback" not in err
    assert not list(Path(tmp_path).rglob("summary.json"))


def test_bad_input_exits_2_from_the_script_without_a_traceback(tmp_path):
    out = run("--model=NoSuchModel", "--dataset=ml-100k", "--epochs=1", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith("error: unknown model") and "Traceback" not in out.stderr


# -- the recbole-compress command --------------------------------------------------------------

def command(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "recbole_compress", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=env)


def test_help_and_version_load_nothing_heavy(tmp_path):
    """--help and --version answer before torch or RecBole load (they take seconds)."""
    probe = (
        "import sys\n"
        "from recbole_compress.cli import COMMANDS, build_parser, command_parser\n"
        "build_parser().format_help()\n"
        "for name in COMMANDS: command_parser(name).format_help()\n"
        "heavy = [m for m in ('torch', 'recbole', 'numpy', 'pandas', 'ray') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    version = command("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("recbole-compress ")


@pytest.mark.parametrize(
    "args, words",
    [
        ([], None),  # no command: the help, exit 2
        (["frobnicate"], ["invalid choice", "frobnicate"]),
        (["run", "--dataset=ml-100k"], ["--model and --dataset"]),
        (["run", "--model=BPR", "--dataset=ml-100k", "epochs"], ["unrecognised argument", "--key=value"]),
        (["run", "--model=BPR", "--dataset=ml-100k", "--num_samples=3"], ["only applies to a search"]),
        (["run", "--model=BPR", "--dataset=ml-100k", "--prune_rat=1", "--strict"], ["prune_rate"]),
        (["run", "--model=BPR", "--dataset=ml-100k", "--epochs=0"], ["epochs=0"]),
        (["tune", "nope.yaml", "--model=BPR_LTH", "--dataset=ml-100k"], ["search file", "nope.yaml", "not found"]),
        (["compare", "--dataset=ml-100k"], ["--backbone"]),
        (["compare", "--dataset=ml-100k", "--backbone=BPR", "--budgets=x"], ["--budgets=x"]),
        (["convert", "lightgcn"], ["SRC", "DST"]),
        (["convert", "nosuchformat", "a", "b"], ["nosuchformat"]),
        (["models", "--epochs=3"], ["takes no config keys"]),
    ],
)
def test_subcommand_errors_are_one_line(args, words, capsys):
    from recbole_compress.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err
    if words is None:
        assert "commands:" in err
        return
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert all(w in lines[0] for w in words), lines[0]


def test_models_lists_models_and_methods(tmp_path):
    out = command("models", cwd=tmp_path)
    assert out.returncode == 0 and "LightGCN_LTH" in out.stdout and "CERP" in out.stdout and "JPQ" in out.stdout


def test_run_prints_the_result_line_and_refuses_another_models_folder(tmp_path):
    common = ["--dataset=ml-100k", "--epochs=1", "--show_progress=False", "--state=ERROR", f"--output_dir={tmp_path}/r"]
    out = command("run", "--model=BPR", *common, "--prune_rat=0.5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "warning: unknown config key 'prune_rat' (did you mean 'prune_rate'?)" in out.stderr
    first, second = out.stdout.strip().splitlines()[-2:]
    assert first.startswith("BPR on ml-100k: dense model") and "test mrr@10 0." in first and "np." not in first
    assert second.startswith("output: ")
    before = (tmp_path / "r" / "model.pt").read_bytes()
    again = command("run", "--model=BPR_LTH", *common, cwd=tmp_path)
    assert again.returncode == 2 and "holds a run of BPR" in again.stderr
    assert (tmp_path / "r" / "model.pt").read_bytes() == before
