"""The destination folder DST: checked before anything is read, written all or nothing.

A conversion is built in a temporary sibling folder ``DST.tmp-<pid>-<random>`` and renamed
to DST only when complete, so a failed, interrupted (Ctrl-C) or terminated (SIGTERM,
SIGHUP) conversion leaves DST as it was and removes its temporary folder. A conversion
killed outright (SIGKILL, power loss) cannot clean up; the next conversion into the same
DST removes what it left (temporaries whose process is gone) and, if it died while
swapping folders, puts the previous DST back first.

An existing DST is replaced only when it holds an earlier conversion (a
``*.convert.json``). Files in it that the earlier conversion did not write (a yaml,
notes) are kept: they are hard-linked (or copied) into the new folder before the swap,
so they survive even a kill at any point. ``*.convert.json`` lists the files each
conversion wrote; for one written before that list existed, the files named
``NAME.<a converter's suffix>`` count as its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from recbole_compress.data.convert.common import ConvertError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# what converters wrote before convert.json listed its files
_LEGACY_SUFFIXES = (
    "train.inter", "valid.inter", "test.inter", "inter", "text", "item2index", "user2index", "user", "item",
    "convert.json",
)
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@dataclass(frozen=True)
class Destination:
    path: Path  # the folder (its parent resolved, itself never a symbolic link)
    name: str  # the dataset name: files are NAME.*


def prepare_destination(dst, name: str | None, src: Path) -> Destination:
    """Check DST and the dataset name before any work; only what killed conversions left is removed."""
    given = Path(dst).expanduser()
    absolute = Path(os.path.abspath(given))
    if absolute.is_symlink():
        raise ConvertError(
            f"destination '{given}' is a symbolic link (to '{os.readlink(absolute)}'); give the real folder "
            f"'{os.path.realpath(absolute)}' as DST, or remove the link"
        )
    path = Path(os.path.realpath(absolute.parent)) / absolute.name
    if path.parent.is_dir():
        remove_stale_temporaries(path)  # first: a kill mid-swap may have left DST aside
    name = path.name if name is None else name
    if not name or not _NAME_RE.match(name):
        raise ConvertError(f"dataset name '{name}' is invalid; use letters, digits, '.', '_' or '-' (see --name)")
    src = Path(src).resolve()
    if path == src or src in path.parents:
        raise ConvertError(
            f"destination '{path}' is the source '{src}' or inside it; write the dataset elsewhere, e.g. dataset/{name}"
        )
    if path in src.parents:
        raise ConvertError(
            f"the source '{src}' is inside the destination '{path}', which a conversion replaces; choose another DST"
        )
    if path.exists():
        if not path.is_dir():
            raise ConvertError(f"destination '{path}' exists and is not a folder; remove it or choose another")
        entries = list(path.iterdir())
        if entries and not any(p.name.endswith(".convert.json") for p in entries):
            raise ConvertError(
                f"destination '{path}' is a non-empty folder that holds no earlier conversion "
                "(no *.convert.json); refusing to replace it, choose another DST"
            )
    return Destination(path, name)


@contextmanager
def staged_output(dest: Destination) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block completes it becomes ``dest.path``."""
    dst = dest.path
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConvertError(
            f"cannot create the folder '{dst.parent}' for the destination ({err.strerror or err}); "
            "choose a writable place"
        ) from None
    with _cleanup_on_stop_signals():
        staging = Path(tempfile.mkdtemp(prefix=f"{dst.name}.tmp-{os.getpid()}-", dir=dst.parent))
        retired = None
        try:
            yield staging
            os.chmod(staging, 0o755)  # mkdtemp makes it 0700
            carry_user_files(dst, staging)
            retired = _swap_into_place(staging, dst)
        finally:
            for leftover in (staging, retired):
                if leftover is not None and leftover.exists():
                    shutil.rmtree(leftover, ignore_errors=True)


def _swap_into_place(staging: Path, dst: Path) -> Path | None:
    """Rename ``staging`` to ``dst``; an old ``dst`` moves to a ``.old-`` folder returned for removal."""
    with _stop_signals_blocked():  # a half-done swap would leave no DST
        if not dst.exists():
            os.replace(staging, dst)
            return None
        retired = Path(tempfile.mkdtemp(prefix=f"{dst.name}.old-{os.getpid()}-", dir=dst.parent))
        os.replace(dst, retired / "previous")
        try:
            os.replace(staging, dst)
        except BaseException:
            os.replace(retired / "previous", dst)
            raise
        return retired


# --------------------------------------------------------------------------- user files


def earlier_outputs(dst: Path) -> set[str]:
    """Names of the files the earlier conversion(s) in ``dst`` wrote."""
    ours: set[str] = set()
    for report in dst.glob("*.convert.json"):
        ours.add(report.name)
        try:
            payload = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            payload = {}
        files = payload.get("files") if isinstance(payload, dict) else None
        if isinstance(files, list) and all(isinstance(f, str) for f in files):
            ours.update(files)
            continue
        name = payload.get("name") if isinstance(payload, dict) else None
        name = name if isinstance(name, str) and name else report.name.removesuffix(".convert.json")
        ours.update(f"{name}.{suffix}" for suffix in _LEGACY_SUFFIXES)
        ours.update(p.name for p in dst.glob(f"{glob_escape(name)}.*.npy"))
    return ours


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def carry_user_files(dst: Path, staging: Path) -> list[str]:
    """Hard-link (or copy) into ``staging`` what ``dst`` holds besides the earlier conversion's files."""
    if not dst.is_dir():
        return []
    ours = earlier_outputs(dst)
    written = {p.name for p in staging.iterdir()}
    carried = []
    for entry in sorted(dst.iterdir()):
        if entry.name in ours:
            continue
        if entry.name in written:
            raise ConvertError(
                f"'{entry}' was not written by the earlier conversion but this conversion writes a file of "
                f"that name; move it out of '{dst}' and convert again"
            )
        target = staging / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)
        carried.append(entry.name)
    return carried


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# --------------------------------------------------------------------------- temporaries and signals


def remove_stale_temporaries(dst: Path) -> list[str]:
    """Remove ``DST.tmp-*`` / ``DST.old-*`` folders of conversions whose process is gone."""
    pattern = re.compile(rf"^{re.escape(dst.name)}\.(tmp|old)-(?:(\d+)-)?[A-Za-z0-9_]+$")
    removed = []
    for entry in sorted(dst.parent.iterdir()):
        match = pattern.match(entry.name)
        if not match or entry.is_symlink() or not entry.is_dir():
            continue
        if match.group(2) is not None and _process_alive(int(match.group(2))):
            continue  # a conversion into the same DST running now
        if match.group(1) == "old" and not dst.exists() and (entry / "previous").is_dir():
            os.replace(entry / "previous", dst)  # killed mid-swap: the previous DST comes back
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or unknowable: leave it alone
    return True


class _Stopped(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum, frame):
    for sig in _STOP_SIGNALS:  # a second signal must not interrupt the cleanup
        signal.signal(sig, signal.SIG_IGN)
    raise _Stopped(signum)


@contextmanager
def _cleanup_on_stop_signals() -> Iterator[None]:
    """While the block runs, SIGTERM/SIGHUP (when nobody else handles them) unwind it, so the
    temporary folder is removed; then the process ends by that signal as it would have."""
    installed = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _STOP_SIGNALS:
            if signal.getsignal(sig) == signal.SIG_DFL:
                installed[sig] = signal.signal(sig, _raise_stopped)
    try:
        yield
    except _Stopped as stop:
        for sig in installed:
            signal.signal(sig, signal.SIG_DFL)
        installed.clear()
        os.kill(os.getpid(), stop.signum)
        raise
    finally:
        for sig, previous in installed.items():
            signal.signal(sig, previous)


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    blocked = {signal.SIGINT, *_STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
