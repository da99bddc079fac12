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
def test_bad_input_one_line_error_nonzero_exit(tmp_path, args, words):
    out = run(*args, "--epochs=1", "--show_progress=False", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), out.stderr[-2000:]
    for word in words:
        assert word in last
    assert "Traceback" not in out.stderr
    assert not list(Path(tmp_path).rglob("summary.json"))
