"""A cgroup per grading worker: limits on a submission's processes *together*.

``prlimit`` in the sandbox limits each process on its own, and Linux does not apply its
process limit to root.  Where the grader may create cgroups (cgroup v1, or v2 with the
controllers delegated), each :class:`~autograder.execution.worker.Worker` gets one group for the
submissions it grades, one after the other:

* ``pids``: at most ``tasks`` processes and threads in all (also for root);
* ``memory``: at most ``memory_bytes`` in all, swap included where it is accounted; beyond
  it the kernel's OOM killer ends a process of the group, no other;
* ``cpu``: the default weight for every worker's group, so parallel workers share the CPU
  equally however many processes or threads a submission runs.

The kernel's command is prefixed by :meth:`WorkerCgroup.enter_command`, which moves the
sandbox into the group before bubblewrap starts; after each submission
:meth:`WorkerCgroup.kill_all` ends whatever is left in it.  Groups are made inside the
grader's own cgroup and named ``dlbook-grading-<pid>-<n>``.  Where none can be made,
:func:`check_cgroups` says why and grading goes on with the per-process limits only.
"""
from __future__ import annotations

import functools
import itertools
import os
import re
import shlex
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
PROC_MOUNTINFO = Path("/proc/self/mountinfo")
CONTROLLERS = ("pids", "memory", "cpu")
TASKS_LIMIT = 1024  # processes and threads of one submission: frameworks start dozens of threads
PREFIX = "dlbook-grading"

_lock = threading.Lock()
_numbers = itertools.count(1)
_live = 0  # groups of this process that exist now
_moved: _SelfMove | None = None


class CgroupsUnavailable(RuntimeError):
    """No group with all of :data:`CONTROLLERS` can be made here; the message says why."""


@dataclass(frozen=True)
class _Hierarchy:
    base: Path  # this process's own cgroup in the hierarchy: groups are made inside it
    controllers: frozenset[str]  # those of CONTROLLERS it carries
    v2: bool


@dataclass(frozen=True)
class _SelfMove:
    """cgroup v2 gives controllers to sub-groups only of a group without processes of its own."""

    base: Path
    leaf: Path  # where this process waits while its worker groups exist
    enabled: tuple[str, ...]


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _hierarchies() -> list[_Hierarchy]:
    """Where this process's cgroups are, for each hierarchy carrying one of CONTROLLERS."""
    own: dict[str, str] = {}  # "0" for v2, else the v1 controllers field ("cpu,cpuacct") -> path
    for line in PROC_CGROUP.read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        own["0" if number == "0" else controllers] = path
    found: list[_Hierarchy] = []
    seen: set[str] = set()
    for line in PROC_MOUNTINFO.read_text().splitlines():
        fields = line.split()
        dash = fields.index("-")
        root, mountpoint, fstype, options = fields[3], _unescape(fields[4]), fields[dash + 1], fields[dash + 3]
        if fstype == "cgroup2":
            key = "0"
        elif fstype == "cgroup":  # its super options name the controllers of one v1 hierarchy
            key = next((k for k in own if k != "0" and set(k.split(",")) <= set(options.split(","))), "")
        else:
            continue
        path = own.get(key)
        if path is None or key in seen or not (path + "/").startswith(root.rstrip("/") + "/"):
            continue  # not ours, a second mount of it, or a mount of another part of the tree
        base = Path(mountpoint, path[len(root.rstrip("/")):].lstrip("/"))
        if key == "0":
            try:
                carried = set((base / "cgroup.controllers").read_text().split())
            except OSError:
                continue
        else:
            carried = set(key.split(","))
        if carried & set(CONTROLLERS):
            seen.add(key)
            found.append(_Hierarchy(base, frozenset(carried & set(CONTROLLERS)), key == "0"))
    # A controller bound to a v1 hierarchy is not usable in v2 (it shows in neither then).
    v1 = {c for h in found if not h.v2 for c in h.controllers}
    found = [h if not h.v2 else _Hierarchy(h.base, h.controllers - v1, True) for h in found]
    return [h for h in found if h.controllers]


def _layout() -> list[_Hierarchy]:
    try:
        hierarchies = _hierarchies()
    except (OSError, ValueError, IndexError) as err:
        raise CgroupsUnavailable(f"cannot read this process's cgroups ({err})") from err
    missing = [c for c in CONTROLLERS if not any(c in h.controllers for h in hierarchies)]
    if missing:
        raise CgroupsUnavailable(f"the {', '.join(missing)} cgroup controller(s) are not available to this process")
    if _moved is not None:  # groups stay where this process was before it moved to its leaf
        hierarchies = [_Hierarchy(_moved.base, h.controllers, h.v2) if h.base == _moved.leaf else h
                       for h in hierarchies]
    return hierarchies


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _delegate_v2(base: Path, wanted: frozenset[str]) -> None:
    """Enable ``wanted`` for sub-groups of ``base``, first moving this process to a leaf if it must."""
    global _moved
    enabled = set((base / "cgroup.subtree_control").read_text().split())
    missing = tuple(sorted(wanted - enabled))
    if not missing:
        return
    pids = (base / "cgroup.procs").read_text().split()
    if pids and (base / "cgroup.type").exists():  # a non-root group holding processes
        if pids != [str(os.getpid())]:
            raise CgroupsUnavailable(f"{base} holds other processes than the grader, so it cannot have "
                                     "sub-groups with controllers; start the grader in a cgroup of its own")
        leaf = base / f"{PREFIX}-{os.getpid()}-grader"
        leaf.mkdir(exist_ok=True)
        _write(leaf / "cgroup.procs", str(os.getpid()))
        _moved = _SelfMove(base, leaf, missing)
    _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))


def _undo_self_move() -> None:
    """Put this process back where it was once it has no worker groups (best effort)."""
    global _moved
    if _moved is None:
        return
    try:
        _write(_moved.base / "cgroup.subtree_control", " ".join(f"-{c}" for c in _moved.enabled))
        _write(_moved.base / "cgroup.procs", str(os.getpid()))
        _moved.leaf.rmdir()
    except OSError:
        return  # something else uses the controllers now: stay in the leaf
    _moved = None


def _limits(hierarchy: _Hierarchy, memory_bytes: int, tasks: int) -> list[tuple[str, str, bool]]:
    """(file, value, required) for the controllers of ``hierarchy``; optional files are set where present."""
    limits = []
    if "pids" in hierarchy.controllers:
        limits.append(("pids.max", str(tasks), True))
    if "memory" in hierarchy.controllers:
        if hierarchy.v2:
            limits += [("memory.max", str(memory_bytes), True), ("memory.swap.max", "0", False)]
        else:  # memsw (memory + swap) must be set after, and not below, the memory limit
            limits += [("memory.limit_in_bytes", str(memory_bytes), True),
                       ("memory.memsw.limit_in_bytes", str(memory_bytes), False)]
    if "cpu" in hierarchy.controllers:  # the default weight, written so that every group has it
        limits.append(("cpu.weight", "100", True) if hierarchy.v2 else ("cpu.shares", "1024", True))
    return limits


def _members(folders: list[Path]) -> set[int]:
    pids: set[int] = set()
    for folder in folders:
        try:
            pids.update(int(pid) for pid in (folder / "cgroup.procs").read_text().split())
        except OSError:
            continue  # the group is gone
    return pids


def _kill(pids: set[int], folders: list[Path]) -> None:
    """SIGKILL ``pids`` that are still in the groups, never a process that reused a number."""
    handles = {}
    for pid in pids:
        try:
            handles[pid] = os.pidfd_open(pid)
        except ProcessLookupError:
            continue  # already gone
        except OSError:  # no pidfds (Linux < 5.3): a plain kill, a number reused in between is unlikely
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        still = _members(folders)  # a pidfd opened while the number was listed is that member
        for pid, handle in handles.items():
            if pid in still:
                try:
                    signal.pidfd_send_signal(handle, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    finally:
        for handle in handles.values():
            os.close(handle)


@dataclass
class WorkerCgroup:
    """One grading worker's group, the same folder name in each hierarchy."""

    folders: list[Path]

    @classmethod
    def create(cls, memory_bytes: int, tasks: int = TASKS_LIMIT) -> "WorkerCgroup":
        """A new, empty group; raises :class:`CgroupsUnavailable`."""
        global _live
        with _lock:
            hierarchies = _layout()
            name = f"{PREFIX}-{os.getpid()}-{next(_numbers)}"
            group = cls([])
            try:
                for hierarchy in hierarchies:
                    if hierarchy.v2:
                        _delegate_v2(hierarchy.base, hierarchy.controllers)
                    folder = hierarchy.base / name
                    folder.mkdir()
                    group.folders.append(folder)
                    for file, value, required in _limits(hierarchy, memory_bytes, tasks):
                        if required or (folder / file).exists():
                            _write(folder / file, value)
            except (OSError, CgroupsUnavailable) as err:
                group._rmdir()
                if _live == 0:
                    _undo_self_move()
                if isinstance(err, CgroupsUnavailable):
                    raise
                where = f" in {err.filename}" if err.filename else ""
                raise CgroupsUnavailable(f"cannot set up a cgroup{where}: {err.strerror or err}") from err
            _live += 1
            return group

    def enter_command(self) -> list[str]:
        """A command prefix that moves its own process into this group, then execs the rest of the command."""
        moves = " ".join(shlex.quote(str(folder / "cgroup.procs")) for folder in self.folders)
        script = f'for procs in {moves}; do echo $$ > "$procs" || exit 125; done; exec "$@"'
        return ["/bin/sh", "-c", script, "sh"]

    def kill_all(self, timeout: float = 10) -> bool:
        """SIGKILL every process in the group until it is empty; ``False`` if some outlived ``timeout``."""
        deadline = time.monotonic() + timeout
        while pids := _members(self.folders):
            if time.monotonic() > deadline:
                return False
            for folder in self.folders:
                if (folder / "cgroup.kill").exists():  # cgroup v2 (Linux 5.14+): new forks included
                    try:
                        _write(folder / "cgroup.kill", "1")
                    except OSError:
                        pass  # the pidfd signals below still come
            _kill(pids, self.folders)
            time.sleep(0.02)
        return True

    def _rmdir(self, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        for folder in self.folders:
            while folder.exists():
                try:
                    folder.rmdir()
                except OSError:  # busy while killed processes finish exiting
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)

    def remove(self) -> None:
        """End every process in the group and delete it (in every hierarchy)."""
        global _live
        self.kill_all()
        with _lock:
            if not self.folders:
                return
            self._rmdir()
            self.folders = []
            _live -= 1
            if _live == 0:
                _undo_self_move()


@functools.lru_cache(maxsize=1)
def check_cgroups() -> str | None:
    """``None`` when grading workers get cgroups here, else the reason they do not."""
    from autograder.execution.sandbox import blocks_nested_userns

    if not blocks_nested_userns():
        return ("bubblewrap cannot stop the sandbox from creating user namespaces, in which it could "
                "raise its own cgroup limits (--disable-userns needs bubblewrap 0.8)")
    try:
        WorkerCgroup.create(memory_bytes=2**30).remove()
    except CgroupsUnavailable as err:
        return str(err)
    return None
