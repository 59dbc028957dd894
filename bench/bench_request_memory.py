"""Resident memory of the API and of the dataset importer against the hostile inputs of reliability rows 1-3,
next to the figures the issue measured before the fixes.

Real processes, as the test harness starts them (tests/support.py): `uvicorn app.main:create_app` serving a tiny
published hint generator (width 8), and the embedded-broker job system's API with a `datasets` worker.

- Row 1: POST /colorize with a 6300x6300 RGBA hint layer (a few dots on transparent, PNG) beside a small sketch,
  once and three at once; a 6300x6300 16-bit gray sketch (PNG mode I;16), once and four at once.
- Row 2: 300 connections each send 9 MiB of a declared 10 MiB raw body (`Content-Type: image/png`) and stall for
  a few seconds; then each sends the rest. What they were answered: 503 with Retry-After once the in-flight
  budget (S2C_MAX_IN_FLIGHT_BODY_BYTES, 256 MiB by default) is full; the admitted ones are read and judged.
- Row 3: the importer worker imports an ~18 MB zip holding one 1.5 GiB entry (89:1, under the ratio guard of
  200:1): a 6000x3000 BMP pair followed by filler, and one small pair beside it.

For each case: the process's RSS just before (idle), its peak during the case (Linux's VmHWM, reset to the RSS
just before through /proc/PID/clear_refs, so the cases can share one process), and its RSS a second after. The
API's first requests (model load, graph tracing) happen before any case. The API runs under the issue's 3 GiB
address-space cap (`prlimit --as`, as tests/reliability/test_memory_bombs.py does): a case that would have killed
it shows as a dead API or 5xx answers. Linux only.

    .venv/bin/python bench/bench_request_memory.py [--connections 300] [--stall-seconds 4] [--api-cap-gib 3]
"""

import argparse
import asyncio
import io
import os
import random
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the test harness (tests/support.py) and the project's packages

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from tests.support import JobSystem, child_environment, start_uvicorn, wait_until  # noqa: E402

MIB = 1024**2
SIDE = 6300  # 39.7 million pixels: just under the default S2C_MAX_PIXELS (40 million)
DECLARED_BYTES = 10 * MIB  # S2C_MAX_UPLOAD_BYTES's default: the largest raw body /colorize takes
STALLED_BYTES = 9 * MIB
ENTRY_BYTES = 3 * 1024**3 // 2  # 1.5 GiB
TARGET_RATIO = 89  # the entry: under the import's ratio guard (model/zip_safety.py, 200:1)

# What the issue measured before the fixes (an API under a 3 GiB address-space cap).
BEFORE = {
    "hint layer x1": "+1.4 GB, 15 s",
    "hint layer x3": "killed the capped API",
    "16-bit sketch x1": "+0.9 GB",
    "16-bit sketch x4": "killed the capped API",
    "stalled uploads": "killed the capped API in 15 s",
    "import 1.5 GiB entry": "importer 0.6 -> 3.7 GB",
}


# ---- /proc ---------------------------------------------------------------------------------------------
def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def reset_peak(pid: int) -> None:
    """VmHWM := VmRSS (Linux 4.0+): from here on VmHWM is this case's peak."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(case: str, pid: int, action: Callable[[], str]) -> dict:
    idle = status_mib(pid, "VmRSS")
    reset_peak(pid)
    started = time.perf_counter()
    outcome = action()
    seconds = time.perf_counter() - started
    peak = status_mib(pid, "VmHWM")
    time.sleep(1.0)
    row = {"case": case, "idle": idle, "peak": peak, "after": status_mib(pid, "VmRSS"), "seconds": seconds,
           "outcome": outcome}  # fmt: skip
    print(f"{case}: idle {idle:.0f} MiB, peak {peak:.0f} MiB, after {row['after']:.0f} MiB, {seconds:.1f} s: "
          f"{outcome}", file=sys.stderr, flush=True)  # fmt: skip
    return row


# ---- inputs ----------------------------------------------------------------------------------------------
def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def small_sketch() -> bytes:
    image = Image.new("L", (320, 320), 255)
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 60, 260, 260), outline=0, width=3)
    draw.line((60, 160, 260, 160), fill=0, width=3)
    return png(image)


def hint_layer() -> bytes:
    """A few color dots on a transparent 6300x6300 layer: about 160 KB of PNG."""
    layer = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for index, (x, y) in enumerate([(1500, 1500), (4800, 1500), (3150, 3150), (1500, 4800), (4800, 4800)]):
        draw.ellipse((x - 40, y - 40, x + 40, y + 40), fill=(255, 40 * index, 0, 255))
    return png(layer)


def gray16_sketch() -> bytes:
    """A 6300x6300 16-bit gray sketch (PNG mode I;16): white with a few black lines."""
    pixels = np.full((SIDE, SIDE), 65535, np.uint16)
    for offset in range(500, SIDE, 900):
        pixels[offset : offset + 6, :] = 0
        pixels[:, offset : offset + 6] = 0
    image = Image.fromarray(pixels)
    assert image.mode == "I;16", image.mode
    return png(image)


def bomb_zip(path: Path) -> dict:
    """One 1.5 GiB entry at about 89:1 (a 6000x3000 24-bit BMP pair, then filler), and one small pair."""
    width, height = 6000, 3000
    pixel_bytes = width * 3 * height  # rows of 18000 bytes: already a multiple of 4
    header = b"BM" + (54 + pixel_bytes).to_bytes(4, "little") + bytes(4) + (54).to_bytes(4, "little")
    header += (40).to_bytes(4, "little") + width.to_bytes(4, "little") + height.to_bytes(4, "little")
    header += (1).to_bytes(2, "little") + (24).to_bytes(2, "little") + bytes(4)
    header += pixel_bytes.to_bytes(4, "little") + bytes(16)
    # Each MiB: incompressible bytes, then zeros (deflate's window is 32 KiB, so one random block serves all);
    # deflating the zeros adds about 2.2 KB per MiB.
    noise = random.Random(0).randbytes(MIB // TARGET_RATIO - 2200)
    chunk = noise + bytes(MIB - len(noise))
    small = Image.new("RGB", (512, 256), "white")
    ImageDraw.Draw(small).rectangle((300, 60, 460, 200), outline="black", width=3)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        with archive.open("big.bmp", "w", force_zip64=True) as entry:
            entry.write(header)
            written = len(header)
            while written < ENTRY_BYTES:
                part = chunk[: ENTRY_BYTES - written]
                entry.write(part)
                written += len(part)
        archive.writestr("small.png", png(small))
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("big.bmp")
    return {"zip_mb": path.stat().st_size / 1e6, "entry_gib": info.file_size / 1024**3,
            "ratio": info.file_size / info.compress_size}  # fmt: skip


# ---- row 1 ---------------------------------------------------------------------------------------------
def concurrently(count: int, request: Callable[[httpx.Client], httpx.Response]) -> str:
    """`count` requests at once (one connection each); their status codes and slowest time."""
    statuses: list[int] = []
    details: list[str] = []
    slowest = [0.0]

    def one() -> None:
        started = time.perf_counter()
        with httpx.Client(timeout=600) as client:
            response = request(client)
        statuses.append(response.status_code)
        if response.status_code != 200:
            details.append(response.text[:160])
        slowest[0] = max(slowest[0], time.perf_counter() - started)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    said = f"; first refusal: {details[0]}" if details else ""
    return f"{dict(sorted(Counter(statuses).items()))}, slowest {slowest[0]:.1f} s{said}"


def publish_hint_generator(models_dir: Path) -> None:
    import keras

    from model.export import publish_generator
    from model.networks import build_generator

    keras.utils.set_random_seed(0)
    manifest = {"job_id": None, "step": 0, "epoch": 0, "model": {"ngf": 8, "norm": "instance"}}
    publish_generator(build_generator(ngf=8, hints=True), models_dir, manifest, onnx=False)


def api_rows(scratch: Path, connections: int, stall_seconds: float, cap_gib: float) -> list[dict]:
    data_dir = scratch / "api" / "data"
    publish_hint_generator(data_dir / "models")
    sketch, hints, gray16 = small_sketch(), hint_layer(), gray16_sketch()
    print(f"inputs: hint layer {len(hints) / 1e3:.0f} KB, 16-bit sketch {len(gray16) / 1e3:.0f} KB, "
          f"sketch {len(sketch) / 1e3:.0f} KB", file=sys.stderr, flush=True)  # fmt: skip
    prefix = ("prlimit", f"--as={int(cap_gib * 1024**3)}") if cap_gib else ()
    api, base_url = start_uvicorn(child_environment(data_dir), data_dir.parent, prefix=prefix)
    try:
        wait_until(lambda: httpx.get(f"{base_url}/readyz").status_code == 200, 120, "the API to be ready")

        def with_hints(client: httpx.Client) -> httpx.Response:
            files = {"file": ("sketch.png", sketch, "image/png"), "hints": ("hints.png", hints, "image/png")}
            return client.post(f"{base_url}/colorize", files=files)

        def wide_gray(client: httpx.Client) -> httpx.Response:
            return client.post(f"{base_url}/colorize", content=gray16, headers={"Content-Type": "image/png"})

        def warm_up(client: httpx.Client) -> httpx.Response:  # model load and tracing, with and without hints
            small_hints = png(Image.new("RGBA", (320, 320), (0, 0, 0, 0)))
            client.post(f"{base_url}/colorize", content=sketch, headers={"Content-Type": "image/png"})
            files = {"file": ("s.png", sketch, "image/png"), "hints": ("h.png", small_hints, "image/png")}
            return client.post(f"{base_url}/colorize", files=files)

        print(f"warm-up: {concurrently(1, warm_up)}", file=sys.stderr, flush=True)
        rows = [
            measure("hint layer x1", api.pid, lambda: concurrently(1, with_hints)),
            measure("hint layer x3", api.pid, lambda: concurrently(3, with_hints)),
            measure("16-bit sketch x1", api.pid, lambda: concurrently(1, wide_gray)),
            measure("16-bit sketch x4", api.pid, lambda: concurrently(4, wide_gray)),
        ]
        port = int(base_url.rsplit(":", 1)[1])
        rows.append(measure("stalled uploads", api.pid,
                            lambda: asyncio.run(stalled_uploads(port, connections, stall_seconds, api.pid))))  # fmt: skip
        rows[-1]["case_detail"] = f"{connections} x 9 of 10 MiB"
        alive = api.alive()
        logged = [line for line in api.log().splitlines() if "Error" in line and not line.startswith("E0000")]
        print(f"API log: {len(logged)} lines naming an error; the last ones:", *logged[-6:], sep="\n  ",
              file=sys.stderr, flush=True)  # fmt: skip
    finally:
        api.stop()
    if not alive:
        raise SystemExit(f"the API died during the cases\n{api.tail()}")
    return rows


# ---- row 2 ---------------------------------------------------------------------------------------------
async def stalled_upload(port: int, released: asyncio.Event, sent_all: list[int]) -> str:
    """Send 9 MiB of a declared 10 MiB, stall until released, then send the rest; the status answered.

    The budget's 503 comes on the request's headers, before any body is read: the client waits a second for
    such an early answer before sending its body, as writing into a connection the server has closed resets
    it and the answer already received is lost."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /colorize HTTP/1.1\r\nHost: bench\r\nContent-Type: image/png\r\n"
            f"Content-Length: {DECLARED_BYTES}\r\n\r\n").encode()  # fmt: skip
    answer = asyncio.ensure_future(reader.readline())
    block = bytes(256 * 1024)

    async def send(count: int) -> None:
        sent = 0
        while sent < count and not answer.done():
            writer.write(block[: count - sent])
            sent += min(len(block), count - sent)
            drained = asyncio.ensure_future(writer.drain())
            await asyncio.wait({answer, drained}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
            if drained.done():
                drained.result()  # a reset connection raises here
            else:
                drained.cancel()

    try:
        writer.write(head)
        await writer.drain()
        await asyncio.wait({answer}, timeout=1.0)
        await send(STALLED_BYTES)
        if not answer.done():
            sent_all.append(1)
            await released.wait()
            await send(DECLARED_BYTES - STALLED_BYTES)
        status_line = (await asyncio.wait_for(answer, 60)).decode(errors="replace").split()
        status = status_line[1] if len(status_line) > 1 else "closed"
        rest = (await asyncio.wait_for(reader.read(4096), 10)).decode(errors="replace")
        if status == "503":
            status += "+retry-after" if "retry-after:" in rest.lower() else " (no retry-after)"
        elif not status.startswith("2") and '"detail"' in rest:
            status += " " + rest[rest.index('"detail"') :][:100]
        return status
    except (ConnectionError, TimeoutError) as error:
        return type(error).__name__
    finally:
        if answer.done() and not answer.cancelled():
            answer.exception()  # retrieved: a reset is reported above, not logged as unhandled
        answer.cancel()
        writer.close()


async def stalled_uploads(port: int, connections: int, stall_seconds: float, api_pid: int) -> str:
    released = asyncio.Event()
    stalled: list[int] = []
    uploads = [asyncio.ensure_future(stalled_upload(port, released, stalled)) for _ in range(connections)]
    # Everyone has sent their 9 MiB or been answered.
    while len(stalled) + sum(upload.done() for upload in uploads) < connections:
        await asyncio.sleep(0.1)
    await asyncio.sleep(stall_seconds)
    holding = status_mib(api_pid, "VmRSS")
    released.set()
    statuses = Counter(await asyncio.gather(*uploads))
    return (
        f"{len(stalled)} stalled (RSS {holding:.0f} MiB while held), answers {dict(sorted(statuses.items()))}"
    )


# ---- row 3 ---------------------------------------------------------------------------------------------
def import_row(scratch: Path) -> dict:
    archive = scratch / "bomb.zip"
    built = bomb_zip(archive)
    print(f"zip: {built['zip_mb']:.1f} MB, entry {built['entry_gib']:.2f} GiB at {built['ratio']:.0f}:1",
          file=sys.stderr, flush=True)  # fmt: skip
    system = JobSystem(scratch / "jobs", broker_url=None, max_dataset_upload_bytes=64 * MIB)
    try:
        system.start_api()
        importer = system.start_worker("importer", queues="datasets")

        def import_it() -> str:
            with system.client() as client:
                accepted = client.post("/datasets", data={"name": "bomb"},
                                       files={"archive": ("bomb.zip", archive.read_bytes(), "application/zip")})  # fmt: skip
                if accepted.status_code != 202:
                    return f"upload refused: {accepted.status_code} {accepted.text[:200]}"
                record = wait_until(
                    lambda: (answer := client.get("/datasets/bomb").json())["state"] != "importing" and answer,
                    600, lambda: "the import to end\n" + system.diagnostics(),
                )  # fmt: skip
            reason = record.get("error") or record.get("reason") or ""
            counts = record.get("counts") or {key: record[key] for key in ("train", "val") if key in record}
            return f"{record['state']} {counts or ''} {reason}".strip()

        row = measure("import 1.5 GiB entry", importer.pid, import_it)
        row["case_detail"] = f"{built['zip_mb']:.0f} MB zip, {built['ratio']:.0f}:1"
        if not importer.alive():
            raise SystemExit(f"the importer died\n{importer.tail()}")
        return row
    finally:
        system.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=300, help="row 2's stalled uploads")
    parser.add_argument("--stall-seconds", type=float, default=4.0, help="how long they hold, all sent")
    parser.add_argument("--api-cap-gib", type=float, default=3.0,
                        help="the API's address-space limit (prlimit --as), as in the issue; 0: none")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-request-memory-") as scratch:
        rows = api_rows(Path(scratch), args.connections, args.stall_seconds, args.api_cap_gib)
        rows.append(import_row(Path(scratch)))
    cap = (
        f"under a {args.api_cap_gib:g} GiB address-space cap (prlimit --as)"
        if args.api_cap_gib
        else "uncapped"
    )
    print(
        f"RSS in MiB of the process named; peak = VmHWM during the case (reset just before it); the API {cap}, "
        "one process for rows 1-2, warmed up first."
    )
    print(
        "| row | case | process | idle | peak | after | seconds | outcome | before (the issue, 3 GiB cap) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---|---|")
    for row in rows:
        number = {"hint": 1, "16-b": 1, "stal": 2, "impo": 3}[row["case"][:4]]
        process = "importer worker" if number == 3 else "API"
        case = row["case"] + (f" ({row['case_detail']})" if "case_detail" in row else "")
        print(f"| {number} | {case} | {process} | {row['idle']:.0f} | {row['peak']:.0f} | {row['after']:.0f} | "
              f"{row['seconds']:.1f} | {row['outcome']} | {BEFORE[row['case']]} |")  # fmt: skip


if __name__ == "__main__":
    main()
