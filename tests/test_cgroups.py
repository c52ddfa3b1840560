"""cgroup limits per grading worker: tasks and memory of a submission in all, no way out, nothing left."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from autograder.execution import cgroups
from autograder.execution.cgroups import WorkerCgroup, check_cgroups
from autograder.cli import main
from autograder.execution.sandbox import check_sandbox
from tests import tiny_course

needs_cgroups = pytest.mark.skipif(check_cgroups() is not None, reason=f"no cgroup limits here: {check_cgroups()}")
needs_sandbox = pytest.mark.skipif(check_sandbox() is not None, reason=f"no sandbox here: {check_sandbox()}")


def grading(test):
    """Marks of the tests that grade the batch: slow, and only where sandbox and cgroups exist."""
    return pytest.mark.slow(needs_cgroups(needs_sandbox(test)))


STORM_MARKER = "600.4343"  # `sleep 600.4343`: easy to find if one survived
# Each answer defines a right `double` only if the limit held.
STORM = f"""import subprocess
started = []
try:
    for _ in range(3000):  # as root, RLIMIT_NPROC does not apply: only the cgroup stops this
        started.append(subprocess.Popen(['sleep', '{STORM_MARKER}']))
except OSError:
    pass
for child in started:  # the test cells need a few threads (OpenBLAS)
    child.kill()
    child.wait()
# 20 daemons: not the kernel's children, which it ends itself when it shuts down
subprocess.run(['sh', '-c', 'for i in $(seq 20); do sleep {STORM_MARKER} & done'])
def double(x):
    return 2 * x if len(started) < 2000 else 0
"""
HOARD = """import os, time
SIZE = 400 * 2**20  # 4 of them: more than --memory-limit 1 in all, less than it each
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)  # so that the parent closing it ends the wait below
            with open('/proc/self/oom_score_adj', 'w') as handle:
                handle.write('1000')  # the OOM killer takes a hoarder, not the kernel
            hoard = bytearray(b'1') * SIZE  # written, so really in memory
            os.write(ready_w, b'1')
            os.read(go_r, 1)  # hold it until the parent has counted
        finally:
            os._exit(0)
    children.append(pid)
ready, dead, deadline = 0, set(), time.monotonic() + 30
os.set_blocking(ready_r, False)
while ready + len(dead) < len(children) and time.monotonic() < deadline:
    try:
        ready += len(os.read(ready_r, 16))
    except BlockingIOError:
        pass
    dead |= {pid for pid in children if pid not in dead and os.waitpid(pid, os.WNOHANG)[0]}
    time.sleep(0.05)
held = ready == len(children) and not dead
os.close(go_w)
for pid in children:
    if pid not in dead:
        os.waitpid(pid, 0)
def double(x):
    return 0 if held else 2 * x
"""
ESCAPE = """import ctypes, os
escaped = []
for path, value in {targets!r}:
    try:
        with open(path, 'w') as handle:
            handle.write(value)
        escaped.append(path)
    except OSError:
        pass
pid = os.fork()
if pid == 0:  # a user namespace of its own would own the cgroup files it mounts
    won = 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x10000000 | 0x20000 | 0x02000000) == 0:  # user, mount, cgroup
            os.makedirs('/tmp/cg', exist_ok=True)
            for fs, options in ((b'cgroup', b'pids'), (b'cgroup', b'memory'), (b'cgroup2', None)):
                if libc.mount(b'none', b'/tmp/cg', fs, 0, options) == 0:
                    for name, value in {raise_own!r}:
                        try:
                            with open('/tmp/cg/' + name, 'w') as handle:
                                handle.write(value)
                            won = 1
                        except OSError:
                            pass
                    libc.umount(b'/tmp/cg')
    finally:
        os._exit(won)
if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]):
    escaped.append('user namespace')
def double(x):
    return 0 if escaped else 2 * x
"""
RAISE_OWN = [("pids.max", "max"), ("memory.limit_in_bytes", "-1"), ("memory.max", "max"),
             ("cpu.shares", "262144"), ("cpu.weight", "10000")]


def _escape_targets() -> list[tuple[str, str]]:
    """Leave the worker's group for the grader's, or raise the group's limits (as seen from outside)."""
    targets = []
    for hierarchy in cgroups._layout():
        targets.append((str(hierarchy.base / "cgroup.procs"), "0"))  # "0": the writing process
        for number in range(1, 200):  # this process's groups, whichever number the worker's got
            group = hierarchy.base / f"{cgroups.PREFIX}-{os.getpid()}-{number}"
            targets += [(str(group / name), value) for name, value in RAISE_OWN]
    return targets


def _groups_of_this_process() -> list[Path]:
    found = []
    for folder, subfolders, _ in os.walk("/sys/fs/cgroup"):
        found += [Path(folder, name) for name in subfolders if name.startswith(f"{cgroups.PREFIX}-{os.getpid()}-")]
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    solution = nbformat.read(tiny_course.make_course(root), 4)
    cases = {
        "storm": tiny_course.with_answer(solution, "double", STORM),
        "hoard": tiny_course.with_answer(solution, "double", HOARD),
        "escape": tiny_course.with_answer(solution, "double", ESCAPE.format(
            targets=_escape_targets(), raise_own=RAISE_OWN)),
        "honest": solution,
    }
    return tiny_course.grade_cases(root, cases, "--workers", "2", "--timeout", "120", "--memory-limit", "1")


@grading
@pytest.mark.parametrize("student", ["storm", "hoard", "escape", "honest"])
def test_limits_hold_for_all_processes_together(graded, student: str) -> None:
    assert graded["code"] == 0
    row = graded["rows"][student]
    assert row["status"].startswith("graded"), row
    assert (row["test_double"], row["test_square"], row["score"]) == ("2", "3", "5"), row


@grading
def test_no_process_of_the_storm_survives(graded) -> None:
    survivors = tiny_course.processes_with(STORM_MARKER)
    for pid in survivors:  # clean up before failing, so one failure does not leak into other tests
        os.kill(pid, 9)
    assert not survivors, f"{len(survivors)} processes of a submission outlived grading"


@grading
def test_no_group_of_the_batch_remains(graded) -> None:
    assert not _groups_of_this_process()


@needs_cgroups
def test_kill_all_ends_a_forking_group_and_remove_deletes_it() -> None:
    marker = "33.2211"
    group = WorkerCgroup.create(memory_bytes=2**30)
    try:
        loop = subprocess.Popen(group.enter_command() + ["sh", "-c", f"while :; do sleep {marker} & sleep 0.01; done"])
        time.sleep(0.5)
        assert len(cgroups._members(group.folders)) > 5
        assert group.kill_all()
        assert loop.wait(timeout=10) == -9
        assert not cgroups._members(group.folders) and not tiny_course.processes_with(marker)
    finally:
        folders = list(group.folders)
        group.remove()
    assert folders and not any(folder.exists() for folder in folders)


@needs_cgroups
def test_every_worker_group_gets_the_limits_and_the_same_cpu_weight() -> None:
    groups = [WorkerCgroup.create(memory_bytes=3 * 2**30, tasks=321) for _ in range(2)]
    try:
        for group in groups:
            values = {folder.name: folder for folder in group.folders}
            assert len(values) == 1 and list(values)[0].startswith(f"dlbook-grading-{os.getpid()}-")
            files = {path.name: path.read_text().strip() for folder in group.folders for path in folder.iterdir()
                     if path.name in {"pids.max", "memory.max", "memory.limit_in_bytes", "cpu.weight", "cpu.shares"}}
            assert files["pids.max"] == "321"
            assert files.get("memory.max", files.get("memory.limit_in_bytes")) == str(3 * 2**30)
            assert files.get("cpu.weight", files.get("cpu.shares")) in {"100", "1024"}
        weights = [(folder / name).read_text() for group in groups for folder in group.folders
                   for name in ("cpu.weight", "cpu.shares") if (folder / name).exists()]
        assert len(weights) == 2 and weights[0] == weights[1]
    finally:
        for group in groups:
            group.remove()


class _StandInCgroup:
    ENTER = ["enter-the-group", "--"]

    def __init__(self) -> None:
        self.killed = 0

    def enter_command(self) -> list[str]:
        return list(self.ENTER)

    def kill_all(self) -> bool:
        self.killed += 1
        return True


def _kernel_command(worker, monkeypatch) -> list[str]:
    """The sandboxed kernel's command as grading a submission writes it (nbgrader itself faked)."""
    from autograder.execution import worker as grading_module
    from autograder.execution.sandbox import KERNEL_NAME

    seen: dict[str, list[str]] = {}

    def autograde(course_root, env, assignment, student, timeout) -> subprocess.CompletedProcess:
        spec = Path(env["JUPYTER_PATH"]) / "kernels" / KERNEL_NAME / "kernel.json"
        seen["argv"] = json.loads(spec.read_text())["argv"]
        return subprocess.CompletedProcess(["autograde"], 0, "", "")

    monkeypatch.setattr(worker.nbgrader, "autograde", autograde)
    def forget(course, assignment, student) -> None:  # the folders only: no gradebook here
        shutil.rmtree(course.root / "submitted" / student / assignment, ignore_errors=True)

    monkeypatch.setattr(grading_module, "forget_earlier_attempt", forget)
    grading_module._execute(worker, tiny_course.NAME, "s1", {f"{tiny_course.NAME}.ipynb": b"{}"})
    return seen["argv"]


def test_without_cgroups_grading_keeps_per_process_limits(tmp_path: Path, monkeypatch, capsys) -> None:
    import autograder.cli as cli
    from autograder.execution import worker as grading_module
    from autograder.execution.course_folder import CourseFolder
    from autograder.limits import Limits

    (tmp_path / "cgroup").write_text("0::/\n")
    (tmp_path / "mountinfo").write_text("22 1 0:21 / /proc rw - proc proc rw\n")
    monkeypatch.setattr(cgroups, "PROC_CGROUP", tmp_path / "cgroup")
    monkeypatch.setattr(cgroups, "PROC_MOUNTINFO", tmp_path / "mountinfo")
    monkeypatch.setattr("autograder.execution.sandbox.blocks_nested_userns", lambda: True)
    check_cgroups.cache_clear()
    try:
        reason = check_cgroups()
    finally:
        check_cgroups.cache_clear()
    assert reason == "the pids, memory, cpu cgroup controller(s) are not available to this process"

    monkeypatch.setattr(grading_module, "check_cgroups", lambda: reason)
    worker = grading_module.Worker.start(CourseFolder(tmp_path / "course", tmp_path / "gradebook.db", Limits()))
    try:
        assert worker.cgroup is None
        assert Path(_kernel_command(worker, monkeypatch)[0]).name == "bwrap"  # no cgroup to enter first
        worker.cgroup = _StandInCgroup()  # where a group exists, the same path enters it first
        command = _kernel_command(worker, monkeypatch)
        assert command[:2] == _StandInCgroup.ENTER and Path(command[2]).name == "bwrap"
        assert worker.cgroup.killed == 1  # and empties it after the submission
    finally:
        worker.cgroup = None
        worker.stop()

    tiny_course.make_course(tmp_path)
    (tmp_path / "subs").mkdir()
    monkeypatch.setattr(cli, "check_sandbox", lambda: None)
    monkeypatch.setattr(cli, "check_cgroups", lambda: reason)
    monkeypatch.setattr("autograder.batch.grade_batch", lambda *args, **kwargs: [])
    assert main(["--course", str(tmp_path), "grade", tiny_course.NAME, str(tmp_path / "subs"),
                 "--out", str(tmp_path / "out")]) == 0
    assert f"note: no cgroup limits ({reason}); limits are per process" in capsys.readouterr().out.splitlines()


def test_cgroup_v2_delegation_on_a_model_tree(tmp_path: Path, monkeypatch) -> None:
    """cgroup v2 (not on this machine, maybe): where the grader's group holds only the grader, it moves to a leaf."""
    base, pid = tmp_path / "cg" / "grader", str(os.getpid())
    base.mkdir(parents=True)
    for name, text in {"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "",
                       "cgroup.procs": pid, "cgroup.type": "domain"}.items():
        (base / name).write_text(text)
    (tmp_path / "cgroup").write_text("0::/grader\n")
    (tmp_path / "mountinfo").write_text(f"30 1 0:26 / {tmp_path}/cg rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n")
    monkeypatch.setattr(cgroups, "PROC_CGROUP", tmp_path / "cgroup")
    monkeypatch.setattr(cgroups, "PROC_MOUNTINFO", tmp_path / "mountinfo")
    monkeypatch.setattr(cgroups, "_live", 0)
    monkeypatch.setattr(cgroups, "_moved", None)

    group = WorkerCgroup.create(memory_bytes=2**30)
    leaf = base / f"dlbook-grading-{pid}-grader"
    assert (leaf / "cgroup.procs").read_text() == pid
    assert (base / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    [folder] = group.folders
    assert folder.parent == base and folder.name.startswith(f"dlbook-grading-{pid}-")
    assert {p.name: p.read_text() for p in folder.iterdir()} == {
        "pids.max": "1024", "memory.max": str(2**30), "cpu.weight": "100"}  # no memory.swap.max here
    assert group.enter_command()[2].startswith(f"for procs in {folder}/cgroup.procs; do echo $$ >")

    # What the kernel would show now: the grader in its leaf, the controllers on.
    (tmp_path / "cgroup").write_text(f"0::/grader/{leaf.name}\n")
    (leaf / "cgroup.controllers").write_text("cpu io memory pids")
    (base / "cgroup.subtree_control").write_text("cpu memory pids")
    (base / "cgroup.procs").write_text("")
    second = WorkerCgroup.create(memory_bytes=2**30)
    assert second.folders[0].parent == base

    for made in (group, second):  # the kernel removes a group's files with it; a model tree does not
        for path in [*made.folders[0].iterdir(), *(leaf.iterdir() if made is second else [])]:
            path.unlink()
        made.remove()
        assert leaf.exists() == (made is group)  # the grader goes back once its last group is gone
    second.remove()  # twice is harmless
    assert not leaf.exists() and (base / "cgroup.procs").read_text() == pid
    assert (base / "cgroup.subtree_control").read_text() == "-cpu -memory -pids"
