"""The code sandbox contains a hostile corpus, every time, with a typed error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.code_sandbox import (
    CpuTimeExceeded,
    FileAccessDenied,
    FileSizeExceeded,
    Limits,
    MemoryExceeded,
    NetworkDenied,
    OutputLimitExceeded,
    ProcessLimitExceeded,
    ProcessSpawnDenied,
    RunResult,
    SandboxInfraError,
    SandboxViolation,
    SubprocessSandbox,
    WallTimeExceeded,
    make_sandbox,
    namespace_prefix,
    run_with_retries,
)
from tools.docker_sandbox import DockerSandbox
from tools.docker_sandbox import _tar as docker_archive

LIMITS = Limits(
    cpu_seconds=1,
    wall_seconds=30.0,
    memory_bytes=256 * 2**20,
    file_size_bytes=2**20,
    max_processes=16,
    output_bytes=2**16,
)
SECRET = "toolgym-sandbox-secret"


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A world-readable file outside the sandbox's directory."""
    path = tmp_path_factory.mktemp("outside") / "secret.txt"
    path.write_text(SECRET)
    path.chmod(0o644)
    path.parent.chmod(0o755)
    return path


def hostile_corpus(outside: Path) -> dict[str, tuple[str, type[SandboxViolation]]]:
    return {
        "fork_bomb": ("import os\nwhile True:\n    os.fork()\n", ProcessLimitExceeded),
        "infinite_loop": ("while True:\n    pass\n", CpuTimeExceeded),
        "memory_bomb": (
            "hoard = []\nwhile True:\n    hoard.append(bytearray(32 * 2**20))\n",
            MemoryExceeded,
        ),
        "read_outside": (f"print(open({str(outside)!r}).read())\n", FileAccessDenied),
        "read_etc_passwd": ("print(open('/etc/passwd').read())\n", FileAccessDenied),
        "open_socket": (
            "import socket\nsocket.create_connection(('93.184.216.34', 80), timeout=2)\n",
            NetworkDenied,
        ),
        "raw_socket": ("import socket\nsocket.socket(socket.AF_INET)\n", NetworkDenied),
        "huge_output": ("while True:\n    print('x' * 10000)\n", OutputLimitExceeded),
        "delete_outside": (f"import os\nos.remove({str(outside)!r})\n", FileAccessDenied),
        "delete_tree": (
            f"import shutil\nshutil.rmtree({str(outside.parent)!r})\n",
            FileAccessDenied,
        ),
        "huge_file": ("open('big', 'wb').write(b'x' * (8 * 2**20))\n", FileSizeExceeded),
        "shell_out": (
            "import subprocess\nsubprocess.run(['cat', '/etc/passwd'])\n",
            ProcessSpawnDenied,
        ),
        "ctypes_escape": ("import ctypes\n", ProcessSpawnDenied),
        "fork_exec_escape": (
            "import sys\nsys.modules.pop('_posixsubprocess')\nimport _posixsubprocess\n",
            ProcessSpawnDenied,
        ),
    }


CASES = sorted(hostile_corpus(Path("/x")))


@pytest.mark.parametrize("name", CASES)
def test_hostile_code_is_contained_with_a_typed_error(name: str, outside: Path) -> None:
    code, expected = hostile_corpus(outside)[name]
    result = SubprocessSandbox(LIMITS).run({"main.py": code}, ["main.py"])
    assert type(result.error) is expected, (result.error, result.stderr[-300:])
    assert not result.ok
    assert SECRET not in result.stdout
    assert outside.read_text() == SECRET  # nothing outside was read out, changed or deleted
    assert result.wall_s < LIMITS.wall_seconds + 5


def test_sleeping_forever_hits_the_wall_clock() -> None:
    limits = Limits(cpu_seconds=5, wall_seconds=1.0)
    result = SubprocessSandbox(limits).run(
        {"main.py": "import time\ntime.sleep(60)\n"}, ["main.py"]
    )
    assert isinstance(result.error, WallTimeExceeded)
    assert 1.0 <= result.wall_s < 5.0


def test_fork_bomb_leaves_no_process_behind() -> None:
    code = "import os, time\nfor _ in range(10):\n    os.fork()\ntime.sleep(60)\n"
    result = SubprocessSandbox(Limits(wall_seconds=2.0, max_processes=16)).run(
        {"main.py": code}, ["main.py"]
    )
    assert result.error is not None
    assert _sandboxed_processes() == []  # the whole tree died with the run


def test_well_behaved_code_runs_and_sees_only_its_files() -> None:
    code = (
        "import os, json\nprint(json.dumps(sorted(os.listdir('.'))))\n"
        "open('out.txt', 'w').write('x')\n"
    )
    result = SubprocessSandbox(LIMITS).run({"main.py": code, "pkg/data.txt": "d"}, ["main.py"])
    assert result.ok and result.error is None
    assert result.stdout.strip() == '["main.py", "pkg"]'


def test_module_entry_point_and_exit_code() -> None:
    files = {"tool.py": "import sys\nprint('ran', sys.argv[1:])\nsys.exit(3)\n"}
    result = SubprocessSandbox(LIMITS).run(files, ["-m", "tool", "--flag"])
    assert result.exit_code == 3 and result.error is None
    assert result.stdout.strip() == "ran ['--flag']"


def test_a_path_leaving_the_directory_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves the sandbox"):
        SubprocessSandbox(LIMITS).run({"../escape.py": "print(1)"}, ["../escape.py"])


def test_backend_choice_and_archive_paths() -> None:
    assert isinstance(make_sandbox("subprocess"), SubprocessSandbox)
    with pytest.raises(ValueError, match="unknown sandbox backend 'podman'"):
        make_sandbox("podman")
    with pytest.raises(ValueError, match="leaves the sandbox"):
        docker_archive({"../../etc/cron.d/x": "boom"})


def test_our_own_failure_is_an_infrastructure_error() -> None:
    broken = SubprocessSandbox(LIMITS, python="/nonexistent/python3")
    with pytest.raises(SandboxInfraError):
        broken.run({"main.py": "print(1)"}, ["main.py"])


def test_retries_recover_from_transient_infrastructure_failures() -> None:
    class Flaky:
        name = "flaky"

        def __init__(self, failures: int) -> None:
            self.failures, self.calls = failures, 0

        def run(self, files: object, argv: object) -> RunResult:
            self.calls += 1
            if self.calls <= self.failures:
                raise SandboxInfraError("engine hiccup")
            return RunResult(0, "ok", "", 0.0, "flaky")

    flaky = Flaky(failures=2)
    assert run_with_retries(flaky, {}, ["x"], attempts=3, backoff_s=0).stdout == "ok"
    assert flaky.calls == 3
    dead = Flaky(failures=99)
    with pytest.raises(SandboxInfraError, match="after 3 attempts"):
        run_with_retries(dead, {}, ["x"], attempts=3, backoff_s=0)
    assert dead.calls == 3


@pytest.mark.skipif(namespace_prefix() is None, reason="unshare does not work on this machine")
def test_enforcement_says_the_kernel_isolates_the_network_here() -> None:
    enforced = SubprocessSandbox(LIMITS).enforcement
    assert enforced["network"].startswith("kernel: network namespace")
    code = (
        "import socket\n"
        "try:\n    socket.socket(socket.AF_INET)\nexcept PermissionError:\n    pass\n"
        "print(open('/proc/net/dev').read().count(':'))\n"
    )
    result = SubprocessSandbox(LIMITS).run({"main.py": code}, ["main.py"])
    # /proc/net/dev of a fresh network namespace lists the loopback only.
    assert result.error is not None or result.stdout.strip() == "1"


def _sandboxed_processes() -> list[str]:
    """Live processes started by a sandbox (their command line holds the prelude)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes() if entry.isdigit() else b""
        except OSError:
            continue
        if b"_sandbox_boot" in cmdline:
            found.append(entry)
    return found


docker_engine = pytest.mark.skipif(
    not DockerSandbox.available(), reason="no Docker engine answers on this machine"
)


@docker_engine
@pytest.mark.parametrize("name", CASES)
def test_docker_backend_contains_the_hostile_corpus(name: str, outside: Path) -> None:
    code, _ = hostile_corpus(outside)[name]
    result = DockerSandbox(LIMITS).run({"main.py": code}, ["main.py"])
    assert not result.ok and result.error is not None
    assert SECRET not in result.stdout


@docker_engine
def test_docker_backend_runs_good_code() -> None:
    result = DockerSandbox(LIMITS).run({"main.py": "print(6 * 7)\n"}, ["main.py"])
    assert result.ok and result.stdout.strip() == "42"
