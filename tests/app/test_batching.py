"""The micro-batcher in-process, with a stand-in generator: a failure anywhere fails its own batch, never the
batcher (before, one exception outside the generator call ended the batching task and every later request hung).
"""

import asyncio
from pathlib import Path

import numpy as np
import pytest

import app.batching
from app.batching import MicroBatcher
from app.model_store import LoadedModel

WAIT_SECONDS = 5.0  # a request the batcher dropped fails the test here instead of hanging it


def _model() -> LoadedModel:
    return LoadedModel(version=1, path=Path("unused"), manifest={}, predict=lambda batch: 255 - batch,
                       load_seconds=0.0)  # fmt: skip


def _sketch(value: int) -> np.ndarray:
    return np.full((256, 256, 3), value, dtype=np.uint8)


async def _colorize_all(batcher: MicroBatcher, model: LoadedModel, values: list[int]) -> list:
    """Send the sketches concurrently; each result is the output image or the exception it raised."""
    requests = [batcher.colorize(model, _sketch(value)) for value in values]
    return await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), WAIT_SECONDS)


def _run_with_batcher(scenario, on_batch=None):
    async def main():
        batcher = MicroBatcher(max_batch_size=8, max_wait_seconds=0.01, on_batch=on_batch)
        batcher.start()
        try:
            return await scenario(batcher)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_a_failing_on_batch_callback_costs_no_request_and_the_batcher_keeps_serving() -> None:
    calls = []

    def on_batch(size: int, seconds: float) -> None:
        calls.append(size)
        if len(calls) == 1:
            raise RuntimeError("metrics are broken")

    async def scenario(batcher):
        model = _model()
        return [await _colorize_all(batcher, model, [index]) for index in range(3)]

    answers = _run_with_batcher(scenario, on_batch)
    for index, [answer] in enumerate(answers):
        assert isinstance(answer, np.ndarray), f"request {index} failed: {answer!r}"
        assert (answer == 255 - index).all()
    assert calls == [1, 1, 1]


def test_an_error_outside_the_generator_call_fails_its_batch_and_later_requests_succeed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_group_by_model = app.batching._group_by_model
    calls = []

    def group_by_model_failing_once(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("a bug in grouping")
        return real_group_by_model(batch)

    monkeypatch.setattr(app.batching, "_group_by_model", group_by_model_failing_once)

    async def scenario(batcher):
        model = _model()
        first = await _colorize_all(batcher, model, [1])
        later = await _colorize_all(batcher, model, [3, 4])
        return first, later

    [first], later = _run_with_batcher(scenario)
    assert isinstance(first, RuntimeError) and "grouping" in str(first), first
    assert [int(answer[0, 0, 0]) for answer in later] == [252, 251]


def test_a_failing_generator_fails_only_its_own_requests() -> None:
    def broken(batch: np.ndarray) -> np.ndarray:
        raise ValueError("broken generator")

    async def scenario(batcher):
        bad = LoadedModel(version=2, path=Path("unused"), manifest={}, predict=broken, load_seconds=0.0)
        failed = await _colorize_all(batcher, bad, [1])
        served = await _colorize_all(batcher, _model(), [5])
        return failed, served

    [failed], [served] = _run_with_batcher(scenario)
    assert isinstance(failed, ValueError)
    assert int(served[0, 0, 0]) == 250
