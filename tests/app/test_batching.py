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


def _model(version: int = 1) -> LoadedModel:
    """Version 1 inverts the sketch; version 2 inverts it and darkens by 100, so answers show who drew them."""
    shift = 0 if version == 1 else 100
    return LoadedModel(version=version, path=Path("unused"), manifest={},
                       predict=lambda batch: 255 - batch - shift, load_seconds=0.0)  # fmt: skip


def _sketch(value: int) -> np.ndarray:
    return np.full((256, 256, 3), value, dtype=np.uint8)


async def _colorize_all(batcher: MicroBatcher, model: LoadedModel, values: list[int]) -> list:
    """Send the sketches concurrently; each result is the output image or the exception it raised."""
    requests = [batcher.colorize(model, _sketch(value)) for value in values]
    return await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), WAIT_SECONDS)


def _run_with_batcher(scenario, on_batch=None, max_wait_seconds=0.01):
    async def main():
        batcher = MicroBatcher(max_batch_size=8, max_wait_seconds=max_wait_seconds, on_batch=on_batch)
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


def test_a_failing_on_batch_callback_after_one_version_costs_another_version_in_the_batch_nothing() -> None:
    """One batch holding two versions is two groups: the callback failing after the first group must not fail
    the second group's requests (before, it failed the whole batch, answered or not)."""
    sizes = []

    def on_batch(size: int, seconds: float) -> None:
        sizes.append(size)
        raise RuntimeError("metrics are broken")

    async def scenario(batcher):
        first, second = _model(1), _model(2)
        models = [first, second, first, second]
        # Announced first: the batch waits until all four are in, so they share one batch for sure.
        tickets = [batcher.announce() for _ in models]
        requests = [
            batcher.colorize(model, _sketch(10 + index), ticket)
            for index, (model, ticket) in enumerate(zip(models, tickets, strict=True))
        ]
        return await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), WAIT_SECONDS)

    answers = _run_with_batcher(scenario, on_batch, max_wait_seconds=WAIT_SECONDS)
    for index, answer in enumerate(answers):
        assert isinstance(answer, np.ndarray), f"request {index} (version {index % 2 + 1}) failed: {answer!r}"
    assert [int(answer[0, 0, 0]) for answer in answers] == [245, 144, 243, 142], "each version drew its own"
    assert sizes == [2, 2], f"one batch of two groups of two expected, the callback saw {sizes}"


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
