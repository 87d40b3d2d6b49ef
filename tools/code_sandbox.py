"""Run model-written Python code in isolation: limits, a temporary directory, no network.

Contract
--------
`sandbox.run(files, argv) -> RunResult` writes `files` ({relative path: text}) into a
fresh temporary directory, runs `python <argv>` there (e.g. `["main.py"]` or
`["-m", "unittest", "tests.test_x"]`) and deletes the directory afterwards.

* **Contained, typed.** Whatever the code does, `run` returns; a broken limit or a
  denied action is `RunResult.error`, a `SandboxViolation` subclass naming what happened:
  `CpuTimeExceeded`, `WallTimeExceeded`, `MemoryExceeded`, `FileSizeExceeded`,
  `ProcessLimitExceeded`, `OutputLimitExceeded`, `NetworkDenied`, `FileAccessDenied`,
  `ProcessSpawnDenied`. Those are the code's failures (the policy's).
* **Our failures are not the policy's.** When the sandbox itself cannot run (no
  interpreter, namespaces refused, the Docker engine gone, a full disk) `run` raises
  `SandboxInfraError`; `run_with_retries` retries those within a budget and re-raises.
  Callers record that on the trajectory as an infrastructure failure, never as a score.
* **What is enforced where** (`SubprocessSandbox.enforcement` says it for this machine):
  - kernel, always: RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE, RLIMIT_NPROC,
    RLIMIT_CORE=0; a wall-clock deadline that kills the whole process tree; an output cap
    (the pipes are read up to `output_bytes`, then the run is killed); a clean
    environment, stdin from /dev/null, a private temporary working directory.
  - kernel, where `unshare` works (Linux): new network namespace (no interface but a
    down loopback: no network at all), PID namespace (killing its init kills every
    process, so a fork bomb cannot outlive the run), mount namespace; as root the code
    runs as `nobody` (65534) so RLIMIT_NPROC applies and files outside the temporary
    directory cannot be written or deleted; as another user a user namespace is used.
  - interpreter (an audit hook installed before the code runs; a second line of defence
    and the source of typed errors, not a boundary by itself): no reading or writing
    outside the work directory and the standard library, no sockets, no subprocesses
    or exec (`_posixsubprocess.fork_exec`, which spawns without an audit event, is removed
    and cannot be loaded again), no `ctypes` (which could remove the hook). Reading a
    world-readable file outside the work directory is stopped here only, not by the kernel:
    for untrusted code in production, use the Docker backend (a filesystem of its own).
  - Docker (`tools.docker_sandbox.DockerSandbox`, docker SDK): the same limits as container settings
    (`network_mode="none"`, memory, pids limit, CPU quota, ulimits, a non-root user),
    plus a filesystem of its own; used where an engine runs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import ClassVar, Protocol

NOBODY = 65534
MARK = b"\x1esandbox:"


# ---- errors -----------------------------------------------------------------------------
class SandboxError(Exception):
    """Anything the code sandbox reports."""


class SandboxInfraError(SandboxError):
    """The sandbox itself failed (our side): retry, record as infrastructure, never score."""


class SandboxViolation(SandboxError):
    """The code broke a limit or tried a denied action (the code's, i.e. the policy's, fault)."""

    kind: ClassVar[str] = "violation"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.kind}: {detail}")
        self.detail = detail


class CpuTimeExceeded(SandboxViolation):
    kind = "cpu_time"


class WallTimeExceeded(SandboxViolation):
    kind = "wall_time"


class MemoryExceeded(SandboxViolation):
    kind = "memory"


class FileSizeExceeded(SandboxViolation):
    kind = "file_size"


class ProcessLimitExceeded(SandboxViolation):
    kind = "processes"


class OutputLimitExceeded(SandboxViolation):
    kind = "output"


class NetworkDenied(SandboxViolation):
    kind = "network"


class FileAccessDenied(SandboxViolation):
    kind = "file_access"


class ProcessSpawnDenied(SandboxViolation):
    kind = "process_spawn"


VIOLATIONS: dict[str, type[SandboxViolation]] = {
    cls.kind: cls
    for cls in (
        CpuTimeExceeded,
        WallTimeExceeded,
        MemoryExceeded,
        FileSizeExceeded,
        ProcessLimitExceeded,
        OutputLimitExceeded,
        NetworkDenied,
        FileAccessDenied,
        ProcessSpawnDenied,
    )
}


# ---- records ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 512 * 2**20
    file_size_bytes: int = 8 * 2**20
    max_processes: int = 32
    output_bytes: int = 64 * 2**10


@dataclass
class RunResult:
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    backend: str
    error: SandboxViolation | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0

    def summary(self, max_chars: int = 1500) -> str:
        """What the agent sees: the outcome, then the end of the output."""
        head = f"exit code {self.exit_code}" if self.error is None else f"ERROR: {self.error}"
        tail = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr)[
            -max_chars:
        ]
        return f"{head}\n{tail}".rstrip()


class CodeSandbox(Protocol):
    name: str

    def run(self, files: Mapping[str, str], argv: Sequence[str]) -> RunResult: ...


# ---- the in-process guard: runs first inside the sandboxed interpreter -------------------
PRELUDE = r"""
import os, sys
def _sandbox_init():
    # PID 1 of a namespace ignores the kernel's SIGXCPU/SIGKILL for rlimits: the code runs
    # as its child, and this init reaps orphans and passes the code's status on.
    child = os.fork()
    if child == 0:
        return
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status)
                     else 128 + os.WTERMSIG(status))
if os.getpid() == 1:
    _sandbox_init()
def _sandbox_boot():
    import errno, runpy
    work = os.path.realpath(os.environ["SANDBOX_WORKDIR"])
    # With -I -S, sys.path holds only the standard library the interpreter really uses.
    readable = tuple(os.path.realpath(p) for p in sys.path if p) + (
        os.path.realpath(os.path.dirname(os.__file__)),)
    devices = ("/dev/null", "/dev/urandom", "/dev/random", "/dev/zero")
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    def mark(kind, detail):
        try:
            os.write(2, ("\x1esandbox:%s:%s\n" % (kind, detail)).encode("utf-8", "replace"))
        except OSError:
            pass
    def deny(kind, detail):
        mark(kind, detail)
        raise PermissionError("sandbox: " + detail)
    def under(path, roots):
        return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
    def where(path):
        return os.path.realpath(os.path.join(work, os.fsdecode(path)))
    def hook(event, args):
        if event == "open":
            if isinstance(args[0], int):
                return
            path, flags = where(args[0]), args[2] or 0
            mode = args[1] if isinstance(args[1], str) else ""
            writing = bool(flags & writes) or any(c in mode for c in "wax+")
            if under(path, (work,)) or (not writing and (under(path, readable) or path in devices)):
                return
            deny("file_access", ("writing " if writing else "reading ") + path)
        elif event in ("os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown",
                       "os.symlink", "os.link", "os.truncate", "os.utime", "shutil.rmtree"):
            paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
            bad = [where(p) for p in paths if not under(where(p), (work,))]
            if bad:
                deny("file_access", "%s %s" % (event, bad[0]))
        elif event.startswith("socket."):
            if event == "socket.__new__" and args[1] == 1:
                return  # AF_UNIX socket pairs: asyncio's event loop needs one (connect is denied)
            deny("network", "%s (no network in the sandbox)" % event)
        elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                       "os.forkpty", "pty.spawn"):
            deny("process_spawn", "%s is not allowed" % event)
        elif event.startswith("ctypes."):
            deny("process_spawn", "%s is not allowed" % event)
        elif event == "import" and args[0] == "_posixsubprocess":
            deny("process_spawn", "loading _posixsubprocess is not allowed")
    fork = os.fork
    def guarded_fork():
        try:
            return fork()
        except BlockingIOError:
            mark("processes", "fork refused: the process limit is reached")
            raise
    os.fork = guarded_fork
    # fork_exec spawns without the subprocess.Popen audit event: load it now, take it out,
    # and deny loading it again (the hook below).
    import subprocess, _posixsubprocess
    del _posixsubprocess.fork_exec
    sys.addaudithook(hook)
    argv = sys.argv[1:]
    sys.argv = argv[1:] if argv[0] == "-m" else argv
    sys.path.insert(0, work)
    mark("started", "")
    try:
        if argv[0] == "-m":
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(argv[0], run_name="__main__")
    except MemoryError:
        mark("memory", "the memory limit is reached")
        raise
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            mark("file_size", "the file size limit is reached")
        raise
_sandbox_boot()
"""


# ---- the subprocess backend ----------------------------------------------------------------
@cache
def namespace_prefix() -> tuple[str, ...] | None:
    """The `unshare` command line that isolates a run on this machine, or None (not Linux,
    no util-linux, namespaces refused). Probed once per process."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    prefix = [unshare, "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return None
        prefix += [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    else:
        prefix[1:1] = ["--user", "--map-root-user"]
    try:
        probe = subprocess.run(
            [*prefix, sys.executable, "-I", "-S", "-c", "pass"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return tuple(prefix) if probe.returncode == 0 else None


@dataclass
class SubprocessSandbox:
    """Runs code in a child interpreter under rlimits (and namespaces where available)."""

    limits: Limits = field(default_factory=Limits)
    isolation: str = "auto"  # "auto": namespaces if they work; "namespaces": required; "none"
    python: str = sys.executable
    name: str = "subprocess"

    def __post_init__(self) -> None:
        if self.isolation not in ("auto", "namespaces", "none"):
            raise ValueError(f"isolation must be auto, namespaces or none, not {self.isolation!r}")

    @property
    def prefix(self) -> tuple[str, ...]:
        if self.isolation == "none":
            return ()
        found = namespace_prefix()
        if found is None and self.isolation == "namespaces":
            raise SandboxInfraError("namespaces were required but `unshare` does not work here")
        return found or ()

    @property
    def enforcement(self) -> dict[str, str]:
        """Which mechanism enforces each protection on this machine."""
        isolated = bool(self.prefix)
        ns = "kernel: network namespace" if isolated else "interpreter: audit hook only"
        dropped = isolated and os.geteuid() == 0
        return {
            "cpu_time": "kernel: RLIMIT_CPU",
            "memory": "kernel: RLIMIT_AS",
            "file_size": "kernel: RLIMIT_FSIZE",
            "processes": "kernel: RLIMIT_NPROC"
            + (" + PID namespace" if isolated else " (not for root: no user switch)"),
            "wall_time": "parent: deadline, kills the process tree",
            "output": "parent: pipes read up to the cap, then killed",
            "network": ns + " + audit hook",
            "files_outside": "interpreter: audit hook"
            + (" + kernel: runs as nobody" if dropped else ""),
            "subprocess/ctypes": "interpreter: audit hook",
        }

    def run(self, files: Mapping[str, str], argv: Sequence[str]) -> RunResult:
        if not argv:
            raise ValueError("argv is empty: give a script path or ['-m', 'module']")
        prefix = self.prefix
        try:
            work = Path(tempfile.mkdtemp(prefix="toolgym-sbx-"))
        except OSError as exc:
            raise SandboxInfraError(f"cannot create a temporary directory: {exc}") from exc
        try:
            _write_files(work, files, as_nobody=bool(prefix) and os.geteuid() == 0)
            command = [*prefix, self.python, "-I", "-S", "-B", "-c", PRELUDE, *argv]
            return self._execute(command, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _execute(self, command: list[str], work: Path) -> RunResult:
        limits = self.limits
        env = {
            "SANDBOX_WORKDIR": str(work),
            "HOME": str(work),
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                command,
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_limiter(limits),
            )
        except OSError as exc:
            raise SandboxInfraError(f"cannot start the sandbox: {exc}") from exc
        stdout, stderr, why = _collect(proc, limits, started)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        return result_of(
            proc.returncode,
            stdout,
            stderr,
            wall,
            why,
            usage.ru_utime + usage.ru_stime,
            limits,
            self.name,
        )


def _limiter(limits: Limits) -> Callable[[], None]:
    import resource

    def apply() -> None:  # runs in the child, between fork and exec
        for name, value in (
            (resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1)),
            (resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)),
            (resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes)),
            (resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes)),
            (resource.RLIMIT_CORE, (0, 0)),
        ):
            resource.setrlimit(name, value)

    return apply


def _collect(
    proc: subprocess.Popen[bytes], limits: Limits, started: float
) -> tuple[bytes, bytes, str | None]:
    """Read both pipes until EOF, the deadline, or the output cap (then kill the tree)."""
    chunks: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
    why = None
    selector = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    selector.register(proc.stdout, selectors.EVENT_READ, 1)
    selector.register(proc.stderr, selectors.EVENT_READ, 2)
    deadline = started + limits.wall_seconds
    while selector.get_map():
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            why = "wall_time"
            break
        for key, _ in selector.select(timeout=min(remaining, 0.5)):
            data = os.read(key.fd, 65536)
            if not data:
                selector.unregister(key.fileobj)
                continue
            room = limits.output_bytes - len(chunks[key.data])
            chunks[key.data] += data[: max(room, 0)]
            if len(data) > room:  # this stream passed the cap
                why = "output"
        if why:
            break
    if why:
        _kill_tree(proc)
    selector.close()
    proc.stdout.close()
    proc.stderr.close()
    return bytes(chunks[1]), bytes(chunks[2]), why


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # the PID namespace dies with its init
        os.killpg(proc.pid, signal.SIGKILL)


def result_of(
    code: int,
    out: bytes,
    err: bytes,
    wall: float,
    why: str | None,
    cpu: float,
    limits: Limits,
    backend: str,
) -> RunResult:
    """A finished run as a `RunResult` (both backends): prelude marks parsed, error typed."""
    stderr_lines, marks = [], []
    for line in err.split(b"\n"):
        if line.startswith(MARK):
            kind, _, detail = line[len(MARK) :].decode("utf-8", "replace").partition(":")
            marks.append((kind, detail))
        else:
            stderr_lines.append(line)
    stdout = out.decode("utf-8", "replace")
    stderr = b"\n".join(stderr_lines).decode("utf-8", "replace")
    if not any(kind == "started" for kind, _ in marks) and why is None and code != 0:
        raise SandboxInfraError(
            f"the sandboxed interpreter did not start (exit {code}): {stderr[-300:]}"
        )
    error = _classify(code, stderr, why, cpu, limits, [m for m in marks if m[0] != "started"])
    return RunResult(code, stdout, stderr, round(wall, 4), backend, error)


def _classify(
    code: int,
    stderr: str,
    why: str | None,
    cpu: float,
    limits: Limits,
    marks: list[tuple[str, str]],
) -> SandboxViolation | None:
    if why == "wall_time":
        return WallTimeExceeded(f"still running after {limits.wall_seconds:g}s (killed)")
    if why == "output":
        return OutputLimitExceeded(f"more than {limits.output_bytes} bytes of output (killed)")
    xcpu = code in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
    killed = code in (-signal.SIGKILL, 128 + signal.SIGKILL, 137)
    if xcpu or (killed and cpu >= limits.cpu_seconds - 0.05):
        return CpuTimeExceeded(f"used more than {limits.cpu_seconds}s of CPU (killed)")
    if marks:
        kind, detail = marks[0]
        return VIOLATIONS.get(kind, SandboxViolation)(detail or kind)
    if code != 0 and "\nMemoryError" in "\n" + stderr:
        return MemoryExceeded(f"the memory limit ({limits.memory_bytes} bytes) is reached")
    if code != 0 and f"[Errno {errno.EFBIG}]" in stderr:
        return FileSizeExceeded(f"a file grew past {limits.file_size_bytes} bytes")
    return None


def _write_files(work: Path, files: Mapping[str, str], *, as_nobody: bool) -> None:
    for relative, text in files.items():
        target = (work / relative).resolve()
        if work.resolve() not in target.parents:
            raise ValueError(f"file path '{relative}' leaves the sandbox directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if as_nobody:  # the code runs as nobody: it owns its directory and nothing else
        for path in [work, *work.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)


def make_sandbox(backend: str = "auto", limits: Limits | None = None) -> CodeSandbox:
    """`subprocess`, `docker`, or `auto` (Docker where an engine answers, else subprocess)."""
    from tools.docker_sandbox import DockerSandbox  # the docker SDK only where it is used

    limits = limits or Limits()
    if backend == "docker" or (backend == "auto" and DockerSandbox.available()):
        return DockerSandbox(limits)
    if backend in ("auto", "subprocess"):
        return SubprocessSandbox(limits)
    raise ValueError(f"unknown sandbox backend '{backend}' (auto, subprocess, docker)")


# ---- retries ------------------------------------------------------------------------------
def run_with_retries(
    sandbox: CodeSandbox,
    files: Mapping[str, str],
    argv: Sequence[str],
    *,
    attempts: int = 3,
    backoff_s: float = 0.2,
) -> RunResult:
    """`sandbox.run`, retrying our own failures (`SandboxInfraError`) up to `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            return sandbox.run(files, argv)
        except SandboxInfraError as exc:
            if attempt == attempts:
                raise SandboxInfraError(f"{exc} (after {attempts} attempts)") from exc
            time.sleep(backoff_s * attempt)
    raise AssertionError("unreachable")
