"""Micro-batching: concurrent requests share one generator call, run in a thread off the event loop.

The batcher takes the first waiting request, then keeps collecting for up to `max_wait_seconds` or until
`max_batch_size`, but only while more requests are known to be on their way (announced and still decoding
their image): a lone request goes to the generator at once instead of waiting for company that is not coming.
Requests for different model versions are never mixed; each group is one call (through the hint signature
when any of its requests has hints), and a failure in one group (its generator, or the metrics callback after
it) fails only that group's requests that have no answer yet. The published signature is one batched graph in
inference mode, so a batch costs far less than its images alone, and an image's output alone and inside any
batch differs by at most 1 level (the published-version contract, docs/ARCHITECTURE.md).
"""

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.model_store import LoadedModel

logger = logging.getLogger("sketch2color.batching")


@dataclass(eq=False)
class _Pending:
    model: LoadedModel
    sketch: np.ndarray
    future: asyncio.Future
    hints: np.ndarray | None = None


class Ticket:
    """A request's place in line while it decodes its image; see `MicroBatcher.announce`."""

    def __init__(self, batcher: "MicroBatcher"):
        self._batcher = batcher
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._batcher._announced -= 1
            self._batcher._changed.set()

    def __enter__(self) -> "Ticket":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class MicroBatcher:
    def __init__(
        self,
        max_batch_size: int,
        max_wait_seconds: float,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        self.max_batch_size = max_batch_size
        self.max_wait_seconds = max_wait_seconds
        self._on_batch = on_batch
        self._pending: deque[_Pending] = deque()
        self._announced = 0
        self._changed = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        _fail(list(self._pending), RuntimeError("the service is shutting down"))
        self._pending.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def announce(self) -> Ticket:
        """Say a request will submit soon, so a forming batch may wait for it; close the ticket on submit."""
        self._announced += 1
        return Ticket(self)

    async def colorize(
        self,
        model: LoadedModel,
        sketch: np.ndarray,
        ticket: Ticket | None = None,
        hints: np.ndarray | None = None,
    ) -> np.ndarray:
        """Queue one uint8 [256, 256, 3] sketch (with uint8 RGBA [256, 256, 4] hints for a hint model) for
        `model`; return its uint8 [256, 256, 3] output."""
        if hints is not None and model.predict_with_hints is None:
            raise ValueError(f"generator version {model.version} does not accept hints")
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(model, sketch, future, hints))
        if ticket is not None:
            ticket.close()
        self._changed.set()
        return await future

    async def _run_forever(self) -> None:
        while True:
            batch: list[_Pending] = []
            try:
                await self._collect(batch)
                for group in _group_by_model(batch):
                    try:
                        await self._run_group(group)
                    except Exception as error:  # this group's requests only: the next group still runs
                        logger.exception("micro-batching failed for a group of %d requests", len(group))
                        _fail(group, error)
            except asyncio.CancelledError:
                _fail(batch, RuntimeError("the service is shutting down"))
                raise
            except Exception as error:
                # A bug here must not stop the batcher: this batch fails, later requests are still served.
                logger.exception("micro-batching failed; failing the %d requests of this batch", len(batch))
                _fail(batch, error)

    async def _collect(self, batch: list[_Pending]) -> None:
        """Move waiting requests into `batch` (the caller's, so that nothing taken is lost on an error)."""
        while not self._pending:
            self._changed.clear()
            await self._changed.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_seconds
        while True:
            while self._pending and len(batch) < self.max_batch_size:
                item = self._pending.popleft()
                if not item.future.done():  # a client that went away
                    batch.append(item)
            remaining = deadline - loop.time()
            if len(batch) >= self.max_batch_size or self._announced <= 0 or remaining <= 0:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def _run_group(self, group: list[_Pending]) -> None:
        group = [item for item in group if not item.future.done()]
        if not group:
            return
        model = group[0].model
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            sketches = np.stack([item.sketch for item in group])
            if model.predict_with_hints is not None and any(item.hints is not None for item in group):
                # One call for the whole group: a request without hints gets an empty layer (alpha 0),
                # which computes exactly what the plain signature does.
                hints = np.stack([_hints_or_none(item) for item in group])
                outputs = await loop.run_in_executor(
                    self._executor, model.predict_with_hints, sketches, hints
                )
            else:
                outputs = await loop.run_in_executor(self._executor, model.predict, sketches)
        except Exception as error:
            logger.exception("generator version %d failed on a batch of %d", model.version, len(group))
            _fail(group, error)
            return
        for item, output in zip(group, outputs, strict=True):
            if not item.future.done():
                item.future.set_result(output)
        if self._on_batch is not None:  # after the answers: a failing metrics callback costs no request
            try:
                self._on_batch(len(group), loop.time() - started)
            except Exception:
                logger.exception("the batch metrics callback failed; the requests were answered")


def _hints_or_none(item: _Pending) -> np.ndarray:
    if item.hints is not None:
        return item.hints
    return np.zeros((*item.sketch.shape[:2], 4), np.uint8)


def _fail(items: list[_Pending], error: BaseException) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(error)


def _group_by_model(batch: list[_Pending]) -> list[list[_Pending]]:
    groups: dict[int, list[_Pending]] = {}
    for item in batch:
        groups.setdefault(id(item.model), []).append(item)
    return list(groups.values())
