"""``recbole-compress recommend``: a trained run's folder in a new process, without the
dataset; bad input as one line and exit status 2, an unsafe model.pt never run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recbole_compress.cli import main
from tests.conftest import REPO, TINY


def _recommend(*args, env=None):
    """The command in a new process (a fresh interpreter: nothing cached from training)."""
    return subprocess.run(
        [sys.executable, "-m", "recbole_compress", "recommend", *map(str, args)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})},
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, request):
    """BPR_LTH with two pruning rounds on a private copy of ml-100k, which is then deleted."""
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("slow (trains three rounds, then starts a new interpreter): run with -m slow")
    import recbole

    from recbole_compress import run_recbole_compress

    root = tmp_path_factory.mktemp("fresh")
    data = root / "data"
    shutil.copytree(Path(recbole.__file__).parent / "dataset_example" / "ml-100k", data / "ml-100k")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(sys, "argv", ["pytest"])
        result = run_recbole_compress(
            "BPR_LTH", "ml-100k",
            config_dict={**TINY, "prune_rounds": 2, "data_path": str(data), "output_dir": str(root / "run")},
        )
    shutil.rmtree(data)
    return Path(result["output_dir"]), result["summary"]


@pytest.fixture(scope="module")
def served_run(tmp_path_factory):
    """A BPR_LTH model.pt with its serving block (built, not trained: the command is what is tested)."""
    from tests.conftest import load_splits
    from tests.serve.helpers import GENERAL, model_for_serving, serve

    train = load_splits("BPR_LTH", GENERAL)[0]
    config, model = model_for_serving("BPR_LTH", GENERAL, train)
    folder = tmp_path_factory.mktemp("served") / "run"
    serve(config, model, train, folder)
    return folder


@pytest.mark.slow
def test_a_trained_run_recommends_in_a_new_process_without_its_dataset(trained_run):
    run, summary = trained_run
    assert summary["serving_bytes"] > 0 and summary["model_bytes"] < summary["dense_model_bytes"]
    done = _recommend(run, "--users", "196,186", "--k", "10")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["user"] for line in lines] == ["196", "186"]
    assert all(len(line["items"]) == 10 == len(line["scores"]) for line in lines)
    assert all(line["scores"] == sorted(line["scores"], reverse=True) for line in lines)


def test_json_lines_one_per_user(served_run, capsys):
    assert main(["recommend", str(served_run), "--users", "196,186", "--k", "7", "--no-exclude_seen"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["user"] for line in lines] == ["196", "186"] and all(len(line["items"]) == 7 for line in lines)


@pytest.mark.parametrize("args,message", [
    (["--users", "196,nobody"], "error: unknown user token 'nobody'"),
    (["--users", "196", "--k", "0"], "error: k=0 must be a whole number from 1 to 1682"),
    (["--users", "196", "--k", "5000"], "error: k=5000 must be a whole number from 1 to 1682"),
    (["--users", "196,,186"], "error: --users '196,,186' has an empty token"),
    ([], "error: pass --users=TOKEN"),
    (["--history", "242,302"], "is a general model: pass users="),
    (["--users", "196", "--epochs=3"], "error: 'recommend' takes no config keys"),
])
def test_bad_input_is_one_line(served_run, capsys, args, message):
    assert main(["recommend", str(served_run), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) or message in err
    assert err.count("\n") == 1


def test_missing_and_damaged_files_are_one_line(served_run, tmp_path, capsys):
    run = served_run
    assert main(["recommend", str(tmp_path), "--users", "196"]) == 2
    assert "holds no model.pt" in capsys.readouterr().err
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "model.pt").write_bytes((run / "model.pt").read_bytes()[:3000])
    assert main(["recommend", str(cut), "--users", "196"]) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and err.count("\n") == 1


class _Payload:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_model_pt_holding_a_pickled_object_is_refused_and_never_run(tmp_path):
    import torch

    from recbole_compress import UserError, load

    marker = tmp_path / "code-ran"
    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save({"tensors": {}, "serving": _Payload(marker)}, folder / "model.pt")
    with pytest.raises(UserError, match="not a weights-only file"):
        load(folder)
    done = _recommend(folder, "--users", "1", env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    assert done.returncode == 2 and "not a weights-only file" in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert not marker.exists()
