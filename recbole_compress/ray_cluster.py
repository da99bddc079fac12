"""Ray for searches and comparisons: importing it, starting a local cluster or joining
one, proving the cluster's workers can run this package, and where a task ran.

Workers run in the Python environment their node was started with (start every node
from an environment that has recbole-compress, e.g. ``uv run --project DIR ray start
...``). Ray's uv hook, which otherwise reruns every worker under ``uv run`` in an upload
of the driver's current directory, is switched off: with it, a driver started outside
the project (``uv run --project DIR`` from elsewhere, or an installed wheel) dies in
``ray.init`` with "... is not in the working_dir". Light at import: ray loads in
:func:`import_ray` only.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket

from recbole_compress.errors import UserError

UV_HOOK = "RAY_ENABLE_UV_RUN_RUNTIME_ENV"
DOCS = "docs/ray.md"
PROBE_TIMEOUT_S = 120


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def import_ray(joining: bool = False):
    """``(ray, ray.tune)``; a one-line error when Ray Tune is not installed. Ray reads
    the uv-hook and authentication settings when it is imported: call this before
    anything imports ray (``joining``: a cluster will be joined)."""
    os.environ.setdefault(UV_HOOK, "0")
    if joining:
        _token_mode_if_token()
    try:
        import ray
        from ray import tune
    except ImportError as err:
        raise UserError(
            f"Ray Tune is not installed ({err}); install it with `uv sync` or `pip install 'ray[tune]' optuna`"
        ) from err
    return ray, tune


def init_ray(address: str | None = None, threads: int = 1, num_cpus: int | None = None):
    """Join the cluster at ``address`` (``auto`` or host:port), else start a local one
    with ``num_cpus`` (default: this machine's). Every worker of this job runs with
    ``threads`` BLAS/OpenMP threads. Returns the ray module."""
    ray, _ = import_ray(joining=bool(address))
    if ray.is_initialized():
        return ray
    threads = str(max(1, int(threads)))
    env = {"env_vars": {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, UV_HOOK: "0"}}
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        reachable(address)
    try:
        if address:
            ray.init(address=address, runtime_env=env, **quiet)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, runtime_env=env, **quiet)
    except ConnectionError as err:
        if address == "auto":
            raise UserError(
                f"no Ray cluster found for --ray-address=auto ({_first_line(err)}); start one with `ray start --head` "
                f"(see {DOCS}) or drop --ray-address to run on a local Ray"
            ) from None
        raise UserError(  # the port answered (reachable), so the cluster refused this driver
            f"the Ray cluster at {address} refused this driver ({_first_line(err)}); with token authentication "
            "every node and driver needs the cluster's token (~/.ray/auth_token or RAY_AUTH_TOKEN) and "
            f"RAY_AUTH_MODE=token (see {DOCS})"
        ) from None
    except RuntimeError as err:  # version mismatch, Ray's uv hook when switched back on, ...
        raise UserError(f"Ray could not start or join the cluster: {_first_line(err)} (see {DOCS})") from None
    if address:
        check_workers(ray, address)
    return ray


def reachable(address: str, timeout: float = 5.0) -> None:
    """A host:port nothing listens on is one line now (ray.init would retry for minutes)."""
    if address in ("auto", "local") or "://" in address:
        return  # Ray finds "auto" itself and fails fast; ray:// is the client protocol
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except ValueError:
        raise UserError(f"--ray-address={address} is not host:port or auto, e.g. --ray-address=127.0.0.1:6379") from None
    except OSError as err:
        raise UserError(
            f"no Ray cluster at {address} ({err.strerror or type(err).__name__}); start one with "
            f"`ray start --head --port={port}` (see {DOCS}) or drop --ray-address to run on a local Ray"
        ) from None


def _token_mode_if_token() -> None:
    """`ray start --head` turns token authentication on when ~/.ray/auth_token exists and
    RAY_AUTH_MODE is unset, but a driver joining the cluster does not (Ray 2.60): do as
    the head did, so a driver on a machine of the cluster joins it."""
    from pathlib import Path

    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or
                                              (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def check_workers(ray, address: str, timeout: float = PROBE_TIMEOUT_S) -> dict:
    """Run one task on the cluster: its workers must import this package, at this version."""
    from recbole_compress import __version__

    def probe():  # nested: shipped by value, so it runs even where the package is missing
        import sys

        try:
            import recbole_compress
        except ImportError as err:
            return {"error": str(err), "python": sys.executable}
        return {"version": recbole_compress.__version__, "python": sys.executable}

    try:
        found = ray.get(ray.remote(num_cpus=0)(probe).remote(), timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise UserError(f"the Ray cluster at {address} ran no task within {timeout:g} s; check `ray status`") from None
    except ray.exceptions.RayError as err:
        found = {"error": _first_line(err), "python": "?"}
    if "error" in found:
        raise UserError(
            f"the Ray cluster at {address} cannot import recbole_compress ({found['error']}; workers run "
            f"{found['python']}); start its nodes from an environment that has it, e.g. "
            f"`uv run --project DIR ray start --address=...` (see {DOCS})"
        )
    if found["version"] != __version__:
        raise UserError(
            f"the Ray cluster at {address} runs recbole-compress {found['version']}, this command {__version__}; "
            "start the cluster's nodes from the same version"
        )
    return found


def assigned_gpus() -> str:
    """The GPU ids Ray gave the running task or trial ("" for none, or outside Ray).
    RecBole's ``Config._init_device`` sets CUDA_VISIBLE_DEVICES from ``gpu_id``: passing
    these ids keeps the variable what Ray set."""
    try:
        import ray

        ids = ray.get_gpu_ids()
    except Exception:  # not inside a Ray worker
        ids = []
    if not ids:
        return ""
    return os.environ.get("CUDA_VISIBLE_DEVICES") or ",".join(str(i) for i in ids)


def where() -> dict:
    """The node this process runs on: ``head``/``worker <id>`` inside Ray, else ``local``."""
    here = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        import ray

        if not ray.is_initialized():
            raise RuntimeError
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:
        return {"node": "local", **here}
    node = next((n for n in ray.nodes() if n.get("NodeID") == node_id), {})
    resources = node.get("Resources", {})
    head = "node:__internal_head__" in resources
    return {
        "node": "head" if head else f"worker {node_id[:6]}",
        "node_id": node_id,
        "node_cpus": resources.get("CPU"),
        "ip": node.get("NodeManagerAddress"),
        **here,
    }


def _first_line(err) -> str:
    text = str(err).strip()
    return " ".join(text.splitlines()[0].split())[:200] if text else type(err).__name__
