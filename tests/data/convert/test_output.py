"""The destination folder (recbole_compress.data.convert.output): all-or-nothing writes, user
files kept, symbolic links and nesting refused, temporaries removed after errors, signals and kills."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from recbole_compress.data import ConvertError
from recbole_compress.data import convert_dataset as convert
from tests.data.convert_helpers import leftovers, light_python, lightgcn_source, write_files

# a conversion in a subprocess that stops inside its first write (so it can be signalled there)
STALLED = """
import signal
import time

# the default disposition, as from a terminal: a test run under nohup hands SIGHUP down ignored,
# and an ignored SIGHUP is left ignored by the converter (nohup's meaning)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
try:
    import recbole_compress.data.convert.splits as where
    attr = "write_inter"
except ImportError:  # the single-module converter of before
    import recbole_compress.data.convert as where
    attr = "_write_inter"

def stall(*args, **kwargs):
    print("writing", flush=True)
    time.sleep(60)

setattr(where, attr, stall)
from recbole_compress.data import convert_dataset
convert_dataset("lightgcn", sys.argv[1], sys.argv[2], seed=int(sys.argv[3]))
"""


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def stalled_conversion(tmp_path, src, dst, seed=5):
    proc = light_python(STALLED, str(src), str(dst), str(seed), cwd=tmp_path)
    line = proc.stdout.readline()
    assert line.strip() == "writing", proc.stderr.read() if proc.poll() is not None else line
    return proc


def test_failed_or_interrupted_conversion_keeps_old_dst(tmp_path, monkeypatch):
    good = lightgcn_source(tmp_path / "good")
    dst = tmp_path / "out" / "ds"
    convert("lightgcn", good, dst)
    before = snapshot(dst)

    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / "test.txt").write_text("0 6\n1 4 oops\n")
    with pytest.raises(ConvertError, match="test.txt:2"):
        convert("lightgcn", bad, dst)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import recbole_compress.data.convert.splits as splits

    monkeypatch.setattr(splits, "write_inter", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert("lightgcn", good, dst, seed=1)
    with pytest.raises(KeyboardInterrupt):
        convert("lightgcn", good, tmp_path / "out" / "fresh")
    monkeypatch.undo()

    assert snapshot(dst) == before
    assert not (tmp_path / "out" / "fresh").exists()
    assert leftovers(dst.parent, "ds") == [] and leftovers(dst.parent, "fresh") == []
    # a complete earlier conversion is replaced; a foreign folder is not
    convert("lightgcn", good, dst, seed=1)
    assert json.loads((dst / "ds.convert.json").read_text())["seed"] == 1
    foreign = tmp_path / "out" / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConvertError, match="refusing"):
        convert("lightgcn", good, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_reconverting_keeps_the_users_files(tmp_path):
    src = lightgcn_source(tmp_path / "src")
    dst = tmp_path / "out" / "ds"
    convert("lightgcn", src, dst)
    (dst / "ds.yaml").write_text("load_col: ~\n")
    (dst / "notes.txt").write_text("mine")
    (dst / "runs").mkdir()
    (dst / "runs" / "log.txt").write_text("kept too")

    result = convert("lightgcn", src, dst, seed=7, valid_ratio=0.5)
    assert (dst / "ds.yaml").read_text() == "load_col: ~\n" and (dst / "notes.txt").read_text() == "mine"
    assert (dst / "runs" / "log.txt").read_text() == "kept too"
    meta = json.loads((dst / "ds.convert.json").read_text())
    assert meta["seed"] == 7 and meta["valid_ratio"] == 0.5  # the conversion itself was replaced
    assert meta["files"] == ["ds.convert.json", "ds.test.inter", "ds.train.inter", "ds.valid.inter"]
    assert meta["files"] == result.info["files"]

    # another name: the earlier conversion's files go, the user's stay
    convert("lightgcn", src, dst, name="other")
    names = sorted(p.name for p in dst.iterdir())
    assert names == ["ds.yaml", "notes.txt", "other.convert.json", "other.test.inter", "other.train.inter",
                     "other.valid.inter", "runs"]
    assert leftovers(dst.parent, "ds") == []


def test_a_user_file_named_like_an_output_is_refused(tmp_path):
    src = lightgcn_source(tmp_path / "src")
    dst = tmp_path / "out" / "ds"
    convert("lightgcn", src, dst)
    (dst / "ds.inter").write_text("mine")
    before = snapshot(dst)
    seq = write_files(tmp_path / "seq", {"b.txt": "1 2 3\n2 3 4\n"})
    with pytest.raises(ConvertError, match="ds.inter") as caught:
        convert("s3rec", seq, dst)
    assert "\n" not in str(caught.value) and "move it out" in str(caught.value)
    assert snapshot(dst) == before and leftovers(dst.parent, "ds") == []


def test_an_earlier_conversion_without_a_file_list(tmp_path):
    """convert.json written before it listed files: NAME.<converter suffix> are the conversion's."""
    dst = write_files(tmp_path / "out" / "ds", {
        "ds.convert.json": json.dumps({"name": "ds", "format": "lightgcn"}),
        "ds.train.inter": "old", "ds.valid.inter": "old", "ds.test.inter": "old", "ds.image.npy": "old",
        "ds.yaml": "mine",
    })
    convert("lightgcn", lightgcn_source(tmp_path / "src"), dst)
    assert (dst / "ds.yaml").read_text() == "mine" and not (dst / "ds.image.npy").exists()
    assert (dst / "ds.train.inter").read_text() != "old"


def test_a_symlinked_destination_is_refused(tmp_path):
    src = lightgcn_source(tmp_path / "src")
    real = tmp_path / "real"
    convert("lightgcn", src, real)
    before = snapshot(real)
    link = tmp_path / "out" / "ds"
    link.parent.mkdir()
    link.symlink_to(real)
    with pytest.raises(ConvertError) as caught:
        convert("lightgcn", src, link)
    message = str(caught.value)
    assert "symbolic link" in message and str(link) in message and "real folder" in message
    assert link.is_symlink() and snapshot(real) == before
    # a symlinked parent is fine: the dataset is named after DST, written through the parent
    parent_link = tmp_path / "data"
    parent_link.symlink_to(tmp_path / "out")
    result = convert("lightgcn", src, parent_link / "yelp")
    assert result.name == "yelp" and (tmp_path / "out" / "yelp" / "yelp.train.inter").is_file()


@pytest.mark.parametrize("where", ["dst_is_src", "dst_inside_src", "src_inside_dst"])
def test_destination_and_source_must_not_nest(tmp_path, where):
    src = lightgcn_source(tmp_path / "data" / "src")
    (src / "src.convert.json").write_text("{}")  # would allow replacing it
    dst = {"dst_is_src": src, "dst_inside_src": src / "out", "src_inside_dst": tmp_path / "data"}[where]
    before = snapshot(src)
    with pytest.raises(ConvertError, match="inside") as caught:
        convert("lightgcn", src, dst)
    assert "\n" not in str(caught.value)
    assert snapshot(src) == before and not (src / "out").exists()


def test_destination_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConvertError, match="afile"):
        convert("lightgcn", lightgcn_source(tmp_path / "src"), tmp_path / "afile" / "ds")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_a_killed_conversion_is_cleaned_up_by_the_next(tmp_path):
    src = lightgcn_source(tmp_path / "src")
    dst = tmp_path / "out" / "ds"
    convert("lightgcn", src, dst)
    before = snapshot(dst)
    proc = stalled_conversion(tmp_path, src, dst)
    proc.kill()
    proc.communicate(timeout=60)
    assert leftovers(dst.parent, "ds") != []  # a kill leaves its temporary folder
    assert snapshot(dst) == before
    convert("lightgcn", src, dst, seed=9)
    assert leftovers(dst.parent, "ds") == []
    assert json.loads((dst / "ds.convert.json").read_text())["seed"] == 9


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP"])
def test_a_terminated_conversion_cleans_up_and_ends_by_the_signal(tmp_path, signum):
    src = lightgcn_source(tmp_path / "src")
    dst = tmp_path / "out" / "ds"
    convert("lightgcn", src, dst)
    before = snapshot(dst)
    proc = stalled_conversion(tmp_path, src, dst)
    proc.send_signal(getattr(signal, signum))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -getattr(signal, signum), err
    assert leftovers(dst.parent, "ds") == [] and snapshot(dst) == before


def test_a_kill_during_the_swap_brings_the_previous_dataset_back(tmp_path):
    """Killed between moving DST aside and renaming the new folder: the next run restores DST."""
    src = lightgcn_source(tmp_path / "src")
    dst = tmp_path / "out" / "ds"
    convert("lightgcn", src, dst)
    before = snapshot(dst)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # its pid is gone once it has ended
    dead.wait()
    retired = dst.parent / f"ds.old-{dead.pid}-abc123"
    retired.mkdir()
    os.replace(dst, retired / "previous")
    staging = dst.parent / f"ds.tmp-{dead.pid}-xyz789"
    staging.mkdir()
    (staging / "half.inter").write_text("partial")
    with pytest.raises(ConvertError, match="malformed"):  # even a failing run restores first
        convert("lightgcn", lightgcn_source(tmp_path / "bad", malformed=True), dst)
    assert snapshot(dst) == before and leftovers(dst.parent, "ds") == []
