"""Run a submission's kernel inside a bubblewrap sandbox.

nbgrader starts the kernel that executes a student's notebook from a *kernelspec*.  For
each submission the grader writes a kernelspec whose command is ``bwrap ... python -c
KERNEL_LAUNCHER`` (ipykernel without its debugger), so the kernel (and everything the
student's code starts) sees:

* no network at all (a new, empty network namespace), its own PID namespace, no capabilities,
  and (bubblewrap 0.8+) no way to create user namespaces, which would give it capabilities again;
* the software it needs, read-only: /usr, the Python installation and its environment, and
  the ``dlbook`` package directory (not the repository around it);
* one writable folder, new and private to this run, holding only the assignment's public
  files (not nbgrader's ``autograded/`` folder, where the notebook being executed already
  holds the restored hidden tests); a private tmpfs as /tmp and $HOME;
* nothing else: not solutions/ or the course folder's source/, not the gradebook, not other
  students' work, not the instructor's home; /sys (for GPUs) without its cgroup file systems.

The kernel talks to nbgrader through ipykernel's IPC transport (Unix sockets in a per-worker
runtime folder bound into the sandbox), because a sandbox without a network has no loopback
shared with the grader.  ``--die-with-parent`` ends the whole sandbox, background processes
included, when its kernel is shut down or the grader dies.  Resource limits for each process
(file size, core dumps, open files, memory, processes) are set with ``prlimit`` inside the
sandbox.  Where cgroups can be made, the kernel's command starts with a prefix that moves it
into its worker's cgroup first (:mod:`autograder.execution.cgroups`): processes and threads, memory of
all processes together and the CPU share of a submission are bounded there.

What this does *not* cover is documented in the README's "Threat model" section.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

KERNEL_NAME = "dlbook-sandbox"
FILE_SIZE_LIMIT = 256 * 2**20  # bytes one file may grow to (disk filling)
OPEN_FILES_LIMIT = 1024
# What `python -m ipykernel_launcher` runs, less the debugger: ipykernel imports debugpy at
# start-up (about 0.2 s of CPU per kernel) for a debugger a grading kernel never offers
# (its kernelspec says so).  Marked missing, it is not imported and ipykernel goes without.
KERNEL_LAUNCHER = ("import sys; sys.modules['debugpy'] = None; "
                   "sys.path[0] == '' and sys.path.pop(0); "  # as ipykernel_launcher: the cwd comes back later
                   "from ipykernel import kernelapp; kernelapp.launch_new_instance()")
PROCESS_HEADROOM = 1024  # processes and threads the sandbox may add to the user's current count


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces on this machine."""


@functools.lru_cache(maxsize=1)
def check_sandbox() -> str | None:
    """``None`` when a sandbox can be made here, else the reason it cannot."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (Debian/Ubuntu: sudo apt-get install bubblewrap)"
    probe = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip()[:200]}"
    return None


@functools.lru_cache(maxsize=1)
def blocks_nested_userns() -> bool:
    """Whether the sandbox can be kept from creating user namespaces (bubblewrap 0.8+).

    In a user namespace of its own a sandboxed process holds every capability there, may
    mount the cgroup file system and, owning its cgroup's files, raise its own limits.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                            "--ro-bind", "/", "/", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def _software_paths() -> list[Path]:
    """Read-only paths the kernel needs: the interpreter, its environment, dlbook."""
    import dlbook

    paths = {Path("/usr"), Path("/etc/fonts"), Path("/etc/ld.so.cache"), Path("/etc/alternatives"),
             Path(sys.base_prefix), Path(sys.prefix), Path(dlbook.__file__).resolve().parent}
    for exe in (Path(sys.executable),):
        paths.add(exe.resolve().parent.parent)  # the real installation behind a venv's symlink
    gpu = [Path(p) for p in ("/sys", "/etc/nvidia") if Path(p).exists()]
    return sorted(p for p in paths | set(gpu) if p.exists())


def _gpu_devices() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("nvidia*"))


def _tasks_of_this_user() -> int:
    """Processes and threads the current user runs now (what RLIMIT_NPROC counts)."""
    uid, count = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue  # the process ended while we looked
    return count


def bwrap_command(workdir: Path, runtime_dir: Path, memory_limit: int) -> list[str]:
    """The sandbox command line for a kernel working in ``workdir``; a process may use ``memory_limit`` bytes."""
    command = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
               "--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if blocks_nested_userns():  # see there; cgroups are only used when this holds
        command[2:2] = ["--unshare-user", "--disable-userns"]
    for path in _software_paths():
        command += ["--ro-bind", str(path), str(path)]
    if Path("/sys/fs/cgroup").is_dir():  # /sys is there for GPUs; its cgroups are not the kernel's business
        command += ["--tmpfs", "/sys/fs/cgroup", "--remount-ro", "/sys/fs/cgroup"]
    for link, target in (("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/lib64", "usr/lib64"), ("/sbin", "usr/sbin")):
        if Path(link).is_symlink():
            command += ["--symlink", target, link]
    for device in _gpu_devices():
        command += ["--dev-bind", device, device]
    command += ["--bind", str(runtime_dir), str(runtime_dir), "--bind", str(workdir), str(workdir),
                "--chdir", str(workdir), "--clearenv"]
    env = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "DLBOOK_RECORDS_DIR": str(runtime_dir),  # see autograder/scoring/records.py
           # nbgrader sets this while it autogrades; its documented idiom for code that must
           # not run when grading (`if not os.getenv('NBGRADER_EXECUTION'):`) reads it.
           "NBGRADER_EXECUTION": "autograde"}
    for name in ("DLBOOK_PROFILE", "CI", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"):
        if name in os.environ:
            env[name] = os.environ[name]
    for name, value in env.items():
        command += ["--setenv", name, value]
    # RLIMIT_DATA bounds each process's memory without breaking frameworks that reserve large
    # address ranges (RLIMIT_AS would).  RLIMIT_NPROC counts all of the user's tasks, so it is
    # set relative to what runs now; Linux does not apply it to root (see the README).
    nproc = _tasks_of_this_user() + PROCESS_HEADROOM
    command += ["prlimit", f"--fsize={FILE_SIZE_LIMIT}", "--core=0", f"--nofile={OPEN_FILES_LIMIT}",
                f"--data={memory_limit}", f"--nproc={nproc}", "--"]
    return command


def write_kernelspec(jupyter_dir: Path, workdir: Path, runtime_dir: Path, memory_limit: int,
                     prefix: list[str] | None = None) -> None:
    """Write the sandboxed kernelspec ``dlbook-sandbox`` under ``jupyter_dir/kernels``.

    ``prefix`` runs before bubblewrap (it enters the worker's cgroup, see :mod:`autograder.execution.cgroups`).
    """
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    argv = (prefix or []) + bwrap_command(workdir, runtime_dir, memory_limit) + [
        sys.executable, "-c", KERNEL_LAUNCHER, "-f", "{connection_file}",
        "--HistoryManager.enabled=False"]
    # Interrupts as a message: the kernel sends itself SIGINT.  A signal from outside would go
    # to the kernel's process group, which holds only bubblewrap's own process (the sandbox is a
    # session and PID namespace of its own); bubblewrap does not forward it, but dies of it,
    # and the kernel with it (--die-with-parent).
    spec = {"argv": argv, "display_name": "Python 3 (grading sandbox)", "language": "python",
            "interrupt_mode": "message", "metadata": {"debugger": False}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))


def kernel_environment(jupyter_dir: Path, runtime_dir: Path) -> dict[str, str]:
    """Environment for the nbgrader process so it finds the kernelspec and puts sockets in ``runtime_dir``."""
    return {"JUPYTER_PATH": str(jupyter_dir), "JUPYTER_RUNTIME_DIR": str(runtime_dir)}
