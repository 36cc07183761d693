"""Integer version folders (TF Serving's layout) and atomic staging of an export.

An export is first written under ``<output_dir>/.staging-<random>/`` (same file
system, so ``os.rename`` is atomic) and each finished piece is then renamed to
its final place, e.g. ``user_tower/<version>/``. TF Serving only loads folders
whose name is an integer, so a server watching ``user_tower/`` never sees a
half-written version. On an exception, the pieces already renamed are removed
again and the staging folder is deleted: no version folder is left behind.

A process killed outright (SIGKILL, OOM killer) cannot clean up: its staging
folder, named after the host and the process id, is removed by the next export
into the same folder once that process is known to be gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable

STAGING_PREFIX = ".staging-"
# .staging-<host>-<pid>-<random>
_STAGING = re.compile(r"^\.staging-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{12}$")

logger = logging.getLogger(__name__)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_abandoned_staging(output_dir: str) -> list[str]:
    """Deletes the staging folders of exports whose process died on this host.

    Folders of live processes and of other hosts (a shared filesystem) are kept;
    returns the names removed.
    """
    removed = []
    if not os.path.isdir(output_dir):
        return removed
    for name in sorted(os.listdir(output_dir)):
        match = _STAGING.match(name)
        if (
            match
            and match["host"] == _host()
            and int(match["pid"]) != os.getpid()
            and not _process_exists(int(match["pid"]))
        ):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
            removed.append(name)
    if removed:
        logger.warning(
            "removed the staging folder(s) of killed exports in %s: %s",
            output_dir,
            ", ".join(removed),
        )
    return removed


def list_versions(directory: str) -> list[int]:
    """The integer-named sub-folders of ``directory``, sorted (empty if it does not exist)."""
    if not os.path.isdir(directory):
        return []
    return sorted(
        int(name)
        for name in os.listdir(directory)
        if name.isdigit() and os.path.isdir(os.path.join(directory, name))
    )


def next_version(output_dir: str, subdirs: Iterable[str]) -> int:
    """One more than the largest version found under any of ``output_dir/<subdir>/`` (1 if none)."""
    found = [v for sub in subdirs for v in list_versions(os.path.join(output_dir, sub))]
    return max(found, default=0) + 1


class StagedExport:
    """Context manager: a staging folder inside ``output_dir`` and an all-or-nothing commit.

    Example:
      >>> with StagedExport("saved_models/run1") as stage:
      ...     save_something(stage.path("user_tower"))
      ...     stage.commit([("user_tower", "user_tower/3")])
    """

    def __init__(self, output_dir: str):
        self.output_dir = os.path.abspath(output_dir)
        self.staging_dir = os.path.join(
            self.output_dir, f"{STAGING_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        )
        self._committed: list[str] = []

    def __enter__(self) -> StagedExport:
        remove_abandoned_staging(self.output_dir)
        os.makedirs(self.staging_dir)
        return self

    def path(self, relative: str) -> str:
        """A path inside the staging folder."""
        return os.path.join(self.staging_dir, relative)

    def commit(self, moves: list[tuple[str, str]]) -> None:
        """Renames each staged ``source`` to ``output_dir/target`` (both relative).

        Folders must not exist yet at their target (a concurrent export of the
        same version fails here instead of mixing files); plain files replace
        their target atomically. If one rename fails, the folders renamed
        before it are removed.
        """
        try:
            for source, target in moves:
                src = self.path(source)
                dst = os.path.join(self.output_dir, target)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if os.path.isdir(src):
                    if os.path.exists(dst):
                        raise FileExistsError(f"export target already exists: {dst}")
                    os.rename(src, dst)
                    self._committed.append(dst)
                else:
                    os.replace(src, dst)
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        """Removes the folders committed so far."""
        for path in reversed(self._committed):
            shutil.rmtree(path, ignore_errors=True)
        self._committed.clear()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.rollback()
        shutil.rmtree(self.staging_dir, ignore_errors=True)


# --------------------------------------------------------------------------- leases, pruning
# A running service (tfcro.serving.service) holds a *lease* on the versions it uses (the
# one it serves and the one before): a file ``<export>/.leases/<host>-<pid>-<token>.json``
# naming them, rewritten at every poll. Pruning never removes a version that a live lease
# names: on this host a lease is live while its process exists; from another host (a
# shared filesystem) while the file is younger than LEASE_TTL_SECONDS.

LEASE_DIR = ".leases"
LEASE_TTL_SECONDS = 300.0


def _lease_path(export_dir: str, token: str) -> str:
    return os.path.join(export_dir, LEASE_DIR, f"{_host()}-{os.getpid()}-{token}.json")


def write_lease(export_dir: str, versions: int | Iterable[int], token: str = "0") -> str:
    """Records (atomically) that this process (its holder ``token``) uses ``versions``."""
    versions = [int(versions)] if isinstance(versions, int) else [int(v) for v in versions]
    path = _lease_path(export_dir, token)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump({"versions": versions, "host": _host(), "pid": os.getpid()}, f)
    os.replace(temporary, path)
    return path


def remove_lease(export_dir: str, token: str = "0") -> None:
    """Drops a lease of this process (a service that stops)."""
    try:
        os.remove(_lease_path(export_dir, token))
    except FileNotFoundError:
        pass


def held_versions(export_dir: str, now: float | None = None) -> set[int]:
    """The versions that live leases name (dead local processes' leases are removed)."""
    folder = os.path.join(export_dir, LEASE_DIR)
    if not os.path.isdir(folder):
        return set()
    now = time.time() if now is None else now
    held = set()
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as f:
                lease = json.load(f)
            versions = {int(v) for v in lease.get("versions", [lease.get("version")])}
            host, pid = str(lease["host"]), int(lease["pid"])
            age = now - os.stat(path).st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not a lease
        if host == _host():
            if _process_exists(pid):
                held |= versions
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)
        elif age < LEASE_TTL_SECONDS:
            held |= versions
    return held


def prune_versions(
    output_dir: str, keep: int, subdirs: Iterable[str], protect: Iterable[int] = ()
) -> list[int]:
    """Removes all but the newest ``keep`` versions from every ``output_dir/<subdir>/``,
    never one in ``protect`` or held by a running service (:func:`held_versions`).

    Returns the versions removed.
    """
    subdirs = list(subdirs)
    versions = sorted({v for sub in subdirs for v in list_versions(os.path.join(output_dir, sub))})
    spared = set(versions[-keep:] if keep > 0 else []) | set(protect) | held_versions(output_dir)
    removed = [v for v in versions if v not in spared]
    for version in removed:
        for sub in subdirs:
            shutil.rmtree(os.path.join(output_dir, sub, str(version)), ignore_errors=True)
    if removed:
        logger.info("pruned export versions %s of %s", removed, output_dir)
    return removed
