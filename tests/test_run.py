"""The run module: files, folders, fingerprints and safe checkpoint loads."""

import json
import os
import pathlib
import stat

import pytest
import torch

from recbole_compress.errors import UserError
from recbole_compress.run import (
    RUN_CONFIG_FILE,
    atomic_write_text,
    claim_folder,
    load_checkpoint,
    prepare_folder,
    read_csv,
    write_csv,
)


class _Touch:
    """Unpickling this creates ``path``: a stand-in for code a crafted checkpoint runs."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_files_get_the_users_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "out" / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp would leave 0600
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("killed")

    from recbole_compress.run import atomic_write

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_csv_round_trip(tmp_path):
    write_csv([{"a": 1, "b": 0.123456789}, {"a": 2, "c": "x"}], tmp_path / "t.csv", first=["c"])
    rows = read_csv(tmp_path / "t.csv")
    assert list(rows[0]) == ["c", "a", "b"] and rows[0]["b"] == "0.123457" and rows[1]["c"] == "x"


def test_output_folder_in_place_of_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(UserError, match="afile is a file"):
        prepare_folder(tmp_path / "afile" / "run")


def test_unwritable_output_folder_is_one_line(tmp_path, monkeypatch):
    real = pathlib.Path.write_bytes

    def refuse(self, data):  # root writes anywhere, so the refusal is simulated
        if self.name.startswith(".write-test-"):
            raise PermissionError(13, "Permission denied")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", refuse)
    with pytest.raises(UserError, match="not writable \\(Permission denied\\)"):
        prepare_folder(tmp_path / "run")


def test_a_folder_of_another_model_or_settings_is_refused(tmp_path):
    claim_folder(tmp_path, "BPR_LTH", "ml-100k", {"prune_rate": 0.2})
    claim_folder(tmp_path, "BPR_LTH", "ml-100k", {"prune_rate": 0.2, "output_dir": "x"})  # same run: fine
    with pytest.raises(UserError, match="holds a run of BPR_LTH"):
        claim_folder(tmp_path, "BPR", "ml-100k", {"prune_rate": 0.2})
    with pytest.raises(UserError, match=r"BPR_LTH with other settings \(prune_rate: 0.2 there, 0.3 here\)"):
        claim_folder(tmp_path, "BPR_LTH", "ml-100k", {"prune_rate": 0.3})
    with pytest.raises(UserError, match=r"\(prune_rate: 0.2 there, unset here; seed: unset there, 7 here\)"):
        claim_folder(tmp_path, "BPR_LTH", "ml-100k", {"seed": 7, "output_dir": "y"})
    saved = json.loads((tmp_path / RUN_CONFIG_FILE).read_text())
    assert saved["model"] == "BPR_LTH" and saved["config"]["prune_rate"] == 0.2  # the refusals changed nothing


def test_results_without_a_run_config_are_not_overwritten(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(UserError, match="another run's results"):
        claim_folder(tmp_path, "BPR", "ml-100k", {})


@pytest.mark.parametrize("force_unsafe", [False, True])
def test_a_pickled_checkpoint_is_refused_and_runs_nothing(tmp_path, monkeypatch, force_unsafe):
    if force_unsafe:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "PWNED"
    torch.save({"state_dict": _Touch(marker)}, tmp_path / "model.pt")
    with pytest.raises(UserError, match="not a weights-only file"):
        load_checkpoint(tmp_path / "model.pt", folder=tmp_path)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_one_line(tmp_path):
    torch.save({"w": torch.ones(1000)}, tmp_path / "state.pt")
    data = (tmp_path / "state.pt").read_bytes()
    (tmp_path / "state.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as err:
        load_checkpoint(tmp_path / "state.pt", folder=tmp_path)
    assert "state.pt is damaged" in str(err.value) and "\n" not in str(err.value)
    assert "weights_only=False" not in str(err.value)


def test_a_checkpoint_outside_the_run_folder_is_not_loaded(tmp_path):
    (tmp_path / "run").mkdir()
    torch.save({"w": torch.ones(1)}, tmp_path / "elsewhere.pt")
    with pytest.raises(UserError, match="outside the run folder"):
        load_checkpoint(tmp_path / "run" / ".." / "elsewhere.pt", folder=tmp_path / "run")
