"""Helpers of the converter tests: small sources written on the fly, atomic-file readers, and a
Python subprocess that loads the converters without the package's torch/RecBole imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_datasets


def shared(name: str) -> Path:
    path = shared_datasets() / name
    if not path.is_dir():
        pytest.skip(f"shared dataset '{name}' not found at {path} (set RECBOLE_COMPRESS_SHARED_DATA)")
    return path


def ml100k() -> Path:
    import recbole

    return Path(recbole.__file__).resolve().parent / "dataset_example" / "ml-100k"


def read_atomic(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def pairs(path: Path) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in read_atomic(path)[1]]


def leftovers(parent: Path, name: str) -> list[str]:
    """Temporary folders a conversion into ``parent/name`` left behind."""
    return sorted(
        p.name for p in parent.iterdir() if p.name.startswith(f"{name}.tmp-") or p.name.startswith(f"{name}.old-")
    )


def write_files(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        (folder / filename).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def lightgcn_source(folder: Path, malformed: bool = False) -> Path:
    """A tiny lightgcn source: 3 users, no valid.txt."""
    return write_files(folder, {
        "train.txt": "0 1 2 3 4 5\n1 2 3\n" + ("2 7 x 9\n" if malformed else "2 7 8\n"),
        "test.txt": "0 6\n1 4\n",
    })


# The package __init__ imports torch and RecBole; these subprocesses load only recbole_compress.data.
_LIGHT_PRELUDE = """
import importlib.util, sys, types
spec = importlib.util.find_spec("recbole_compress")
package = types.ModuleType("recbole_compress")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["recbole_compress"] = package
"""


def light_python(code: str, *args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    """Start ``python -c PRELUDE + code`` with stdout/stderr piped (text)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-c", _LIGHT_PRELUDE + textwrap.dedent(code), *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )
