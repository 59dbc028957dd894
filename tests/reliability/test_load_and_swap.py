"""Load across hot swaps: no failed request, and the API's resident memory shows no growth trend once warm."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

from tests.app.conftest import draw_sketch, encode, run_server, wait_for_version
from tests.conftest import publish_tiny_generator

CLIENTS = 4
LAST_VERSION_TIMEOUT_SECONDS = 120  # publishing and hot-loading take seconds on a slow machine
MEMORY_SAMPLES = 24  # every 0.5 s


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_load_with_hot_swaps_has_no_errors_and_no_memory_growth(tmp_path: Path):
    data_dir = tmp_path / "data"
    publish_tiny_generator(data_dir / "models", seed=1)
    sketches = [encode(draw_sketch(seed=seed)) for seed in range(8)]
    with run_server(data_dir) as server:
        wait_for_version(server, 1)
        failures: list[str] = []
        served: set[str] = set()
        stop = threading.Event()

        def load(index: int) -> int:
            sent = 0
            with server.client() as client:
                while not stop.is_set():
                    answer = client.post(
                        "/colorize", files={"file": ("s.png", sketches[(index + sent) % 8], "image/png")}
                    )
                    sent += 1
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")
                    else:
                        served.add(answer.headers["X-Model-Version"])
            return sent

        samples: list[int] = []
        with ThreadPoolExecutor(CLIENTS) as pool:
            loaders = [pool.submit(load, index) for index in range(CLIENTS)]
            started = time.monotonic()
            swaps = 0
            while swaps < 3:  # a new version every 3 s (or as fast as publishing goes): the store swaps it in
                if time.monotonic() - started > 2 + 3 * swaps:
                    publish_tiny_generator(data_dir / "models", seed=10 + swaps)
                    swaps += 1
                time.sleep(0.5)
            deadline = time.monotonic() + LAST_VERSION_TIMEOUT_SECONDS
            while "4" not in served and time.monotonic() < deadline and not failures:
                time.sleep(0.5)
            for _ in range(MEMORY_SAMPLES):  # the last version is warm: memory under a steady load
                samples.append(resident_bytes(server.process.pid))
                time.sleep(0.5)
            stop.set()
            sent = sum(loader.result(timeout=60) for loader in loaders)
    assert not failures, f"{len(failures)} of {sent} requests failed: {failures[:3]}"
    assert {"1", "4"} <= served, f"the load should see the first and the last version, saw {sorted(served)}"
    first, last = median(samples[: len(samples) // 2]), median(samples[len(samples) // 2 :])
    print(f"\n{sent} requests; resident memory {first / 2**20:.0f} MiB -> {last / 2**20:.0f} MiB")
    assert last <= first * 1.05 + 32 * 2**20, (
        f"resident memory grew from {first / 2**20:.0f} to {last / 2**20:.0f} MiB"
    )
