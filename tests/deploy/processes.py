"""Process helpers for the launcher tests: /proc descendants, waiting on output and URLs."""

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """pid -> start time of every live descendant of `pid`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat:
                children.setdefault(stat[1], []).append(int(entry.name))
    found, pending = {}, [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            stat = _stat(child)
            if stat and child not in found:
                found[child] = stat[2]
                pending.append(child)
    return found


def still_running(processes: dict[int, int]) -> list[int]:
    """Those of `processes` (pid -> start time) still alive: same pid, same start time, not a zombie."""
    alive = []
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat and stat[2] == started and stat[0] not in ("Z", "X"):
            alive.append(pid)
    return alive


def wait_until_gone(processes: dict[int, int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while still_running(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    return still_running(processes)


def tail(path: Path, characters: int = 6000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-characters:]


def wait_for_text(path: Path, text: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in (path.read_text(errors="replace") if path.exists() else ""):
            return
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode} before printing {text!r}:\n{tail(path)}")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout:.0f}s:\n{tail(path)}")


def http_status(url: str, timeout: float = 5.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def wait_for_status(url: str, status: int, process: subprocess.Popen, log: Path, timeout: float) -> float:
    """Seconds until `url` answered `status`; fails with the log's tail if the process dies or times out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if http_status(url) == status:
            return time.monotonic() - start
        if process.poll() is not None:
            raise AssertionError(
                f"exited with {process.returncode} before {url} answered {status}:\n{tail(log)}"
            )
        time.sleep(1.0)
    raise AssertionError(
        f"{url} did not answer {status} within {timeout:.0f}s (now {http_status(url)}):\n{tail(log)}"
    )


def interrupt_and_wait(process: subprocess.Popen, timeout: float, signal_number: int) -> int:
    os.kill(process.pid, signal_number)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"still running {timeout:.0f}s after signal {signal_number}") from None
