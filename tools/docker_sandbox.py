"""The Docker backend of the code sandbox (`tools.code_sandbox`), through the docker SDK.

`DockerSandbox(limits, image).run(files, argv)` has the contract of
`SubprocessSandbox.run`: the same prelude (audit hook, typed violations), with the limits
as container settings: `network_mode="none"`, memory (and swap) limit, pids limit, one
CPU, ulimits for CPU time, file size and core dumps, user `nobody`, all capabilities
dropped, `no-new-privileges`, and a filesystem of its own. The image must already be on
the engine (nothing is pulled at run time). An engine error is a `SandboxInfraError`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.code_sandbox import NOBODY, PRELUDE, Limits, RunResult, SandboxInfraError, result_of


@dataclass
class DockerSandbox:
    """Runs code in a throw-away container (docker SDK): no network, limits, non-root user.

    The image must already be on the engine (nothing is pulled at run time); it needs a
    `python` on its PATH. `DockerSandbox.available()` says whether an engine answers.
    """

    limits: Limits = field(default_factory=Limits)
    image: str = "python:3.11-slim"
    name: str = "docker"

    @staticmethod
    def available() -> bool:
        try:
            import docker

            docker.from_env(timeout=5).ping()
        except Exception:  # no SDK, no socket, engine down: all mean "not here"
            return False
        return True

    def run(self, files: Mapping[str, str], argv: Sequence[str]) -> RunResult:
        import docker
        import docker.errors

        try:
            client = docker.from_env(timeout=int(self.limits.wall_seconds) + 30)
            container = self._create(client, argv)
        except (docker.errors.DockerException, OSError) as exc:
            raise SandboxInfraError(f"docker: cannot create the container: {exc}") from exc
        try:
            container.put_archive("/sandbox", _tar(files))
            started = time.perf_counter()
            container.start()
            why = self._wait(container)
            wall = time.perf_counter() - started
            out = container.logs(stdout=True, stderr=False)[: self.limits.output_bytes + 1]
            err = container.logs(stdout=False, stderr=True)[: 4 * self.limits.output_bytes]
            state = container.attrs if why else (container.reload() or container.attrs)
            code = int(state["State"].get("ExitCode", -1))
            if state["State"].get("OOMKilled"):
                code, err = 1, err + b"\nMemoryError"
            if why is None and len(out) > self.limits.output_bytes:
                why = "output"
            return result_of(code, out, err, wall, why, 0.0, self.limits, self.name)
        except docker.errors.DockerException as exc:
            raise SandboxInfraError(f"docker: {exc}") from exc
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)

    def _create(self, client: object, argv: Sequence[str]) -> object:
        import docker.types

        limits = self.limits
        return client.containers.create(  # type: ignore[attr-defined]
            self.image,
            command=["python", "-I", "-S", "-B", "-c", PRELUDE, *argv],
            working_dir="/sandbox",
            environment={"SANDBOX_WORKDIR": "/sandbox", "HOME": "/sandbox"},
            user=f"{NOBODY}:{NOBODY}",
            network_mode="none",
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            pids_limit=limits.max_processes,
            nano_cpus=10**9,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=[
                docker.types.Ulimit(
                    name="cpu", soft=limits.cpu_seconds, hard=limits.cpu_seconds + 1
                ),
                docker.types.Ulimit(
                    name="fsize", soft=limits.file_size_bytes, hard=limits.file_size_bytes
                ),
                docker.types.Ulimit(name="core", soft=0, hard=0),
            ],
            detach=True,
        )

    def _wait(self, container: object) -> str | None:
        import requests

        try:
            container.wait(timeout=self.limits.wall_seconds)  # type: ignore[attr-defined]
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            container.kill()  # type: ignore[attr-defined]
            return "wall_time"
        return None


def _tar(files: Mapping[str, str]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for relative, text in files.items():
            if relative.startswith("/") or ".." in Path(relative).parts:
                raise ValueError(f"file path '{relative}' leaves the sandbox directory")
            data = text.encode("utf-8")
            info = tarfile.TarInfo(relative)
            info.size, info.uid, info.gid, info.mode = len(data), NOBODY, NOBODY, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
