"""Starting and stopping Flower's real processes: SuperLink, SuperNodes and their children.

Processes are stopped by PID, children first (a SuperNode's ``flower-superexec`` and the ClientApp
processes it spawns), then the parent — never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import ProcessFailed

__all__ = ["FlowerProcess", "flower_env", "free_port", "run_foreground", "wait_for_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ProcessFailed(f"a Flower process exited with code {process.returncode} before listening on {port}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ProcessFailed(f"nothing listened on port {port} within {timeout:.0f} s")


#: How often a SuperExec asks for a task. The SuperLink's SuperExec only launches a ServerApp, once
#: per study: 0.5 s costs at most that per study, where 20 Hz kept ~15 % of a core busy on the
#: SuperLink answering it (a fifth of all its requests while a study ran).
SERVERAPP_LAUNCH_POLL_SECONDS = 0.5
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def flower_env(flwr_home: Path, poll_seconds: float = SERVERAPP_LAUNCH_POLL_SECONDS) -> dict[str, str]:
    """Environment for Flower processes: our interpreter's scripts first, telemetry off, and how often
    a SuperExec polls for tasks (only stock SuperNodes need it fast: a ClientApp task per message)."""
    scripts = str(Path(sys.executable).parent)
    return {
        # Several Flower processes share the machine's cores (a SuperNode per silo in tests and the
        # demo); each node's algebra is a few vector products, and BLAS worker threads that spin
        # while waiting made a node's round 2-3x slower. One BLAS thread each, unless set already.
        **{name: "1" for name in _BLAS_THREADS},
        **os.environ,
        "PATH": scripts + os.pathsep + os.environ.get("PATH", ""),
        "FLWR_HOME": str(flwr_home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": str(poll_seconds),
    }


def _descendants(pid: int) -> list[int]:
    """All descendant PIDs of ``pid``, deepest last, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    out: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child in children.get(current, []):
            out.append(child)
            frontier.append(child)
    return out


@dataclass
class FlowerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, name: str, command: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> FlowerProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                       stdin=subprocess.DEVNULL)
        return cls(name, process, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def all_pids(self) -> list[int]:
        return [self.pid, *_descendants(self.pid)]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the children (deepest first), then the process itself, by PID."""
        for pid in reversed(_descendants(self.pid)):
            _terminate(pid, timeout)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # a zombie child of ours stays until reaped; it is harmless once it has exited
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_foreground(command: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
    """Run a Flower process in the foreground (its output on ours) until it exits; if we are stopped first
    (a signal raised in this thread, an error), stop it and its children by PID before passing that on."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    handle = FlowerProcess(Path(command[0]).name, process, Path(os.devnull))
    try:
        return process.wait()
    finally:
        if process.poll() is None:
            handle.stop()
