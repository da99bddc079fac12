"""Joining Ray: the uv hook, unreachable clusters and workers that cannot run the package
are one line; a driver started outside the project directory works."""

import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from recbole_compress import UserError, __version__
from recbole_compress.ray_cluster import UV_HOOK, check_workers, import_ray, reachable
from tests.conftest import REPO


def test_uv_hook_is_off_unless_the_user_set_it(monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv(UV_HOOK, raising=False)
    import_ray()
    assert os.environ[UV_HOOK] == "0"
    monkeypatch.setenv(UV_HOOK, "1")
    import_ray()
    assert os.environ[UV_HOOK] == "1"


def test_unreachable_or_malformed_address_is_one_line():
    with pytest.raises(UserError, match=r"no Ray cluster at 127\.0\.0\.1:1 .*ray start --head --port=1"):
        reachable("127.0.0.1:1", timeout=2)
    with pytest.raises(UserError, match="not host:port or auto"):
        reachable("nonsense")


class FakeRay:
    """ray.get returns what a worker's probe would."""

    class exceptions:
        class RayError(Exception):
            pass

        class GetTimeoutError(RayError):
            pass

    def __init__(self, answer):
        self.answer = answer

    def remote(self, **_):
        return lambda fn: SimpleNamespace(remote=lambda: None)

    def get(self, ref, timeout=None):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer, named", [
    ({"error": "No module named 'recbole_compress'", "python": "/usr/bin/python3"},
     "cannot import recbole_compress (No module named 'recbole_compress'; workers run /usr/bin/python3)"),
    ({"version": "0.0.1", "python": "/x"}, f"runs recbole-compress 0.0.1, this command {__version__}"),
    (FakeRay.exceptions.GetTimeoutError(), "ran no task within 1 s"),
])
def test_workers_that_cannot_run_the_package_are_one_line(answer, named):
    with pytest.raises(UserError) as err:
        check_workers(FakeRay(answer), "10.0.0.1:6379", timeout=1)
    assert named in str(err.value) and "\n" not in str(err.value)
    assert check_workers(FakeRay({"version": __version__, "python": "/x"}), "a:1")["version"] == __version__


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed")
def test_driver_started_outside_the_project_directory(tmp_path):
    """`uv run --project DIR` from another directory: Ray's uv hook would die in ray.init
    ('... is not in the working_dir'); with it off the workers run this environment."""
    pytest.importorskip("ray")
    script = tmp_path / "probe.py"
    script.write_text("from recbole_compress.ray_cluster import init_ray\n"
                      "ray = init_ray(num_cpus=1)\n"
                      "print('task ran:', ray.get(ray.remote(lambda: 40 + 2).remote()))\n")
    env = {k: v for k, v in os.environ.items() if k != UV_HOOK}
    command = ["uv", "run", "--project", str(REPO), "--frozen", "--no-sync", "python", str(script)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "task ran: 42" in done.stdout, done.stderr[-2000:]
    # Ray's hook switched back on: the one-line error, not Ray's traceback
    done = subprocess.run(command, cwd=tmp_path, env={**env, UV_HOOK: "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "is not in the working_dir" in done.stderr
    assert "Ray could not start or join the cluster" in done.stderr


def test_a_driver_joining_a_cluster_uses_the_token_the_head_uses(tmp_path, monkeypatch):
    """`ray start --head` turns token authentication on when ~/.ray/auth_token exists; a
    driver joining it must too (Ray 2.60 leaves it off, and the cluster refuses it)."""
    pytest.importorskip("ray")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    import_ray(joining=True)
    assert "RAY_AUTH_MODE" not in os.environ  # no token: nothing to use
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("x" * 32)
    import_ray(joining=False)
    assert "RAY_AUTH_MODE" not in os.environ  # a local Ray decides for itself
    import_ray(joining=True)
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    import_ray(joining=True)
    assert os.environ["RAY_AUTH_MODE"] == "disabled"  # the user's choice stands
