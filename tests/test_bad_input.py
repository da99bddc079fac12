"""Crafted and damaged files: nothing read from a file runs as code, and every damaged
state file is one line (issue: hardening). Each crafted payload would create a marker
file if it were evaluated or unpickled."""

import json
import pathlib

import pytest
import torch

from recbole_compress import UserError, run_recbole_compress
from tests.conftest import TINY


class _Touch:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _payload(marker) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


@pytest.fixture(params=[False, True], ids=["safe-default", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"])
def unsafe_env(request, monkeypatch):
    if request.param:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    return request.param


@pytest.fixture(scope="module")
def bpr_run(tmp_path_factory):
    import os

    folder = tmp_path_factory.mktemp("bpr")
    here = os.getcwd()
    os.chdir(folder)
    try:
        result = run_recbole_compress("BPR", "ml-100k", config_dict={**TINY, "output_dir": str(folder / "run")})
    finally:
        os.chdir(here)
    return pathlib.Path(result["output_dir"])


def test_crafted_run_config_is_read_as_data(bpr_run, tmp_path, unsafe_env):
    import shutil

    from recbole_compress.quick_start import load_model

    run = tmp_path / "run"
    shutil.copytree(bpr_run, run)
    marker = tmp_path / "PWNED"
    saved = json.loads((run / "run_config.json").read_text())
    saved["config"]["wandb_project"] = _payload(marker)
    (run / "run_config.json").write_text(json.dumps(saved))
    model, config, _ = load_model(run)
    assert config["wandb_project"] == _payload(marker) and not marker.exists()


def test_crafted_tune_config_block_is_read_as_data(tmp_path):
    from recbole_compress.tune import _check_base
    from recbole_compress.tune_space import load_search_file

    marker = tmp_path / "PWNED"
    search = tmp_path / "search.yaml"
    search.write_text(f"prune_rate: {{choice: [0.1]}}\nconfig: {{wandb_project: \"{_payload(marker)}\"}}\n")
    spec = load_search_file(search)
    config = _check_base("BPR_LTH", "ml-100k", [], spec.fixed)
    assert config["wandb_project"] == _payload(marker) and not marker.exists()


def test_a_model_pt_holding_a_pickle_is_refused(bpr_run, tmp_path, unsafe_env):
    import shutil

    from recbole_compress.quick_start import load_model

    run = tmp_path / "run"
    shutil.copytree(bpr_run, run)
    marker = tmp_path / "PWNED"
    torch.save({"tensors": _Touch(marker)}, run / "model.pt")
    with pytest.raises(UserError, match="model.pt is not a weights-only file"):
        load_model(run)
    assert not marker.exists()


def _cerp_state(tmp_path, saved_model_file):
    """A finished-looking CERP state (matching settings) that names ``saved_model_file``."""
    from recbole_compress.run import build_config, config_fingerprint

    settings = {**TINY, "memory_budget": 0.2, "threshold_epochs": 1, "output_dir": str(tmp_path / "run")}
    config = build_config("BPR_CERP", "ml-100k", config_dict=settings)
    (tmp_path / "run").mkdir()
    torch.save({"fingerprint": config_fingerprint(config), "stage": 2, "model": None, "stage1_epochs": 1,
                "stage1_nonzeros": 1, "budget_met_by_thresholds": True, "epoch_times": [],
                "saved_model_file": saved_model_file, "best_valid_score": 0.1, "best_valid_result": {}},
               tmp_path / "run" / "budget_state.pt")
    return settings


def test_a_state_file_pointing_outside_its_folder_loads_nothing_there(tmp_path, unsafe_env):
    marker = tmp_path / "PWNED"
    torch.save({"state_dict": _Touch(marker)}, tmp_path / "evil.pth")
    settings = _cerp_state(tmp_path, str(tmp_path / "evil.pth"))
    # the name is looked up inside the run folder, where no such file is: the run trains afresh
    result = run_recbole_compress("BPR_CERP", "ml-100k", config_dict=settings)
    assert result["summary"]["model"] == "BPR_CERP" and not marker.exists()


def test_a_state_file_naming_a_pickle_in_its_folder_is_refused(tmp_path, unsafe_env):
    marker = tmp_path / "PWNED"
    settings = _cerp_state(tmp_path, "evil.pth")
    torch.save({"state_dict": _Touch(marker)}, tmp_path / "run" / "evil.pth")
    with pytest.raises(UserError, match="evil.pth is not a weights-only file"):
        run_recbole_compress("BPR_CERP", "ml-100k", config_dict=settings)
    assert not marker.exists()


@pytest.mark.parametrize("damaged", ["lth/state.pt", "lth/round-1.pth"])
def test_damaged_ticket_state_is_one_line(tmp_path, damaged):
    settings = {**TINY, "prune_rounds": 1, "output_dir": str(tmp_path / "run")}
    run_recbole_compress("BPR_LTH", "ml-100k", config_dict=settings)
    path = tmp_path / "run" / damaged
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError) as err:
        run_recbole_compress("BPR_LTH", "ml-100k", config_dict=settings)
    assert f"{path.name} is damaged" in str(err.value) and "\n" not in str(err.value)
