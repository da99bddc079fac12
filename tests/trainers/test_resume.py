"""A killed run continues from its last validation and ends where an uninterrupted one ends."""

import pytest
import torch

from recbole_compress.export import load_artifact
from recbole_compress.quick_start import run_recbole_compress
from recbole_compress.trainers import resume
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")

# BPR draws from every stream a resume restores: shuffling, numpy's negative sampling
SETTINGS = {**TINY, "epochs": 4, "eval_step": 1, "stopping_step": 10}


class Killed(Exception):
    pass


def kill_after(epoch):
    def callback(epoch_idx, valid_score):
        if epoch_idx == epoch:
            raise Killed

    return callback


def run(out, **kwargs):
    return run_recbole_compress("BPR", "ml-100k", config_dict={**SETTINGS, "output_dir": str(out)}, **kwargs)


def weights(result):
    return load_artifact(f"{result['output_dir']}/{result['summary']['artifact']}")["tensors"]


@pytest.fixture
def every_validation(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(resume.EpochResumeMixin, "resume_every_s", 0.0)


def test_a_killed_run_resumes_to_the_same_weights(every_validation, tmp_path):
    whole = run(tmp_path / "whole")
    with pytest.raises(Killed):
        run(tmp_path / "killed", callback_fn=kill_after(1))
    assert (tmp_path / "killed" / resume.RESUME_FILE).is_file()
    resumed = run(tmp_path / "killed")
    assert not (tmp_path / "killed" / resume.RESUME_FILE).is_file()  # removed once training ended
    assert resumed["test_result"] == whole["test_result"]
    assert all(torch.equal(a, b) for a, b in zip(weights(whole).values(), weights(resumed).values()))
    assert len(resumed["summary"]["valid_curve"]) == len(whole["summary"]["valid_curve"]) == 4


def test_a_run_killed_after_its_last_epoch_does_not_train_again(every_validation, tmp_path, monkeypatch):
    with pytest.raises(Killed):
        run(tmp_path / "killed", callback_fn=kill_after(3))
    from recbole.trainer import Trainer

    best = {p: p.read_bytes() for p in (tmp_path / "killed").glob("*.pth")}  # RecBole's best checkpoint
    monkeypatch.setattr(Trainer, "_train_epoch", lambda *a, **k: pytest.fail("trained again"))
    assert run(tmp_path / "killed")["test_result"]
    assert best and best == {p: p.read_bytes() for p in (tmp_path / "killed").glob("*.pth")}  # not overwritten
