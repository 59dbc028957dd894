"""Publishing generators as numbered SavedModel versions (finding them is storage/versions.py, without TF).

Layout (docs/ARCHITECTURE.md): `<models_dir>/generator/<version>/` holds a TF SavedModel plus `manifest.json`.
A version is written into a hidden temporary folder and renamed into place when complete, with the number
allocated under a file lock, so readers never see a half-written version and two jobs never share a number.
The layout is TensorFlow Serving's base path, so TF Serving can serve the same folder unchanged.
"""

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from filelock import FileLock

from model.hints import rgba_to_hint_map
from model.networks import HINT_CHANNELS
from model.onnx_engine import ONNX_FILE, OnnxConversionFailed, onnx_export_available, write_onnx
from storage.atomic import write_atomically
from storage.layout import IMAGE_SIZE
from storage.serving_policy import LOCK_NAME, GateDecision, publish_lock
from storage.shared import shared_mode
from storage.shared_versions import (
    LOCK_EXPIRES_SECONDS,
    commit_version,
    next_version_number,
    place_version,
    sync_versions,
    upload_version,
)
from storage.versions import MANIFEST, PublishedVersion, generator_dir, numbered_versions

SIGNATURE_KEY = "serving_default"
HINTS_SIGNATURE_KEY = "colorize_with_hints"
INPUT_NAME = "sketch"
HINTS_NAME = "hints"
OUTPUT_NAME = "image"
_SKETCH_SPEC = {"dtype": "uint8", "shape": [None, IMAGE_SIZE, IMAGE_SIZE, 3], "meaning": "RGB sketch"}
_HINTS_SPEC = {
    "dtype": "uint8",
    "shape": [None, IMAGE_SIZE, IMAGE_SIZE, 4],
    "meaning": "RGBA color hints: alpha > 0 marks a hint",
}
_OUTPUTS = {
    OUTPUT_NAME: {"dtype": "uint8", "shape": [None, IMAGE_SIZE, IMAGE_SIZE, 3], "meaning": "RGB color"}
}
SIGNATURE_DESCRIPTION = {
    "signature": SIGNATURE_KEY,
    "inputs": {INPUT_NAME: _SKETCH_SPEC},
    "outputs": _OUTPUTS,
}
HINTS_SIGNATURE_DESCRIPTION = {
    "signature": HINTS_SIGNATURE_KEY,
    "inputs": {INPUT_NAME: _SKETCH_SPEC, HINTS_NAME: _HINTS_SPEC},
    "outputs": _OUTPUTS,
}
_SKETCH_INPUT = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.uint8, name=INPUT_NAME)
_HINTS_INPUT = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 4], tf.uint8, name=HINTS_NAME)
_COUNTER_NAME = ".last_version"
logger = logging.getLogger("sketch2color.export")


def sketch_to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the generator's input range."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def float_to_uint8(images: tf.Tensor) -> tf.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded to nearest."""
    scaled = (tf.cast(images, tf.float32) + 1.0) * 127.5
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0.0, 255.0), tf.uint8)


def accepts_hints(generator: keras.Model) -> bool:
    """A hint model reads the sketch's 3 channels plus the hint map's 4 (model/hints.py)."""
    return int(generator.input_shape[-1]) == 3 + HINT_CHANNELS


class ServingGenerator(tf.Module):
    """The exported graph: uint8 sketches (and RGBA hints) in, uint8 colored images out, inference mode.

    One batched graph: a batch of N costs far less than N single calls, which is what makes the API's
    micro-batching pay. The generator normalizes each image on its own (instance norm, no dropout at
    inference), so an image's output depends on the batch only through the kernels' summation order: alone
    or inside any batch it differs by at most 1 level of 255 (tests check batches of 1-16).
    """

    def __init__(self, generator: keras.Model):
        super().__init__(name="sketch2color")
        self.generator = generator
        self.hints = accepts_hints(generator)
        self.serve = tf.function(self._serve, input_signature=[_SKETCH_INPUT])
        if self.hints:  # only a hint model has (and traces) the second signature
            self.serve_with_hints = tf.function(self._colorize, input_signature=[_SKETCH_INPUT, _HINTS_INPUT])

    def _serve(self, sketch: tf.Tensor) -> dict[str, tf.Tensor]:
        """`serving_default`: the sketch alone (a hint model gets an empty hint map), as TF Serving sends it."""
        if self.hints:
            return self._colorize(sketch, tf.zeros(tf.concat([tf.shape(sketch)[:3], [4]], 0), tf.uint8))
        return {OUTPUT_NAME: float_to_uint8(self.generator(sketch_to_float(sketch), training=False))}

    def _colorize(self, sketch: tf.Tensor, hints: tf.Tensor) -> dict[str, tf.Tensor]:
        """`colorize_with_hints`: the sketch and an RGBA hint layer on the same 256x256 square."""
        generator_input = tf.concat([sketch_to_float(sketch), rgba_to_hint_map(hints)], axis=-1)
        return {OUTPUT_NAME: float_to_uint8(self.generator(generator_input, training=False))}

    def signatures(self) -> dict[str, Any]:
        if not self.hints:
            return {SIGNATURE_KEY: self.serve}
        return {SIGNATURE_KEY: self.serve, HINTS_SIGNATURE_KEY: self.serve_with_hints}


def colorize_in_memory(generator: keras.Model, sketches_uint8: Any, hints_rgba: Any = None) -> tf.Tensor:
    """What the published signatures compute, for a generator still in memory."""
    module = ServingGenerator(generator)  # held here: the traced method keeps only a weak reference to it
    sketches = tf.convert_to_tensor(sketches_uint8, tf.uint8)
    if hints_rgba is None:
        return module.serve(sketches)[OUTPUT_NAME]
    return module.serve_with_hints(sketches, tf.convert_to_tensor(hints_rgba, tf.uint8))[OUTPUT_NAME]


def publish_generator(
    generator: keras.Model,
    models_dir: str | os.PathLike,
    manifest: dict[str, Any],
    gate: Callable[[], GateDecision] | None = None,
    extra_files: dict[str, bytes] | None = None,
    onnx: bool = False,
    onnx_memory_limit_bytes: int | None = None,
) -> PublishedVersion:
    """Write the generator as the next version, atomically; return what was published.

    `gate()` runs under the publish lock (so no other version or policy change slips in between) and its
    answer is the manifest's `gate` (storage/serving_policy.py). `extra_files` go beside the SavedModel
    (e.g. `sample.png`); TF Serving ignores them. With `onnx` (and the onnx extra installed) an ONNX copy
    goes beside them too, converted in a child process (model/onnx_engine.py) stopped past
    `onnx_memory_limit_bytes` (default: 90% of the memory available); a conversion that fails only leaves it
    out, and the manifest's `onnx` says why.
    """
    directory = generator_dir(models_dir)
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".tmp-{uuid.uuid4().hex}"
    try:
        module = ServingGenerator(generator)
        tf.saved_model.save(module, str(staging), signatures=module.signatures())
        for name, content in (extra_files or {}).items():
            (staging / name).write_bytes(content)
        onnx_record = _onnx_copy(module, staging, onnx_memory_limit_bytes) if onnx else None

        def write_manifest(version: int) -> dict[str, Any]:
            full_manifest = {
                "version": version,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                **manifest,
                **({"gate": gate().model_dump()} if gate is not None else {}),
                "hints": module.hints,
                **({"onnx": onnx_record} if onnx_record else {}),
                "signature": SIGNATURE_DESCRIPTION,
                **({"hints_signature": HINTS_SIGNATURE_DESCRIPTION} if module.hints else {}),
            }
            write_atomically(staging / MANIFEST, json.dumps(full_manifest, indent=2))
            return full_manifest

        shared = shared_mode()
        if shared is not None:  # the bucket first, its manifest last; this host's copy after
            version = next_version_number(shared, models_dir)
            upload_version(shared, staging, models_dir, version)
            sync_versions(shared, models_dir)  # now, so that little is left to copy under the lock
            with publish_lock(models_dir, wait_seconds=LOCK_EXPIRES_SECONDS):
                full_manifest = write_manifest(version)
                commit_version(shared, staging, models_dir, version)
                place_version(staging, directory / str(version))
        else:
            with FileLock(str(directory / LOCK_NAME)):
                version = _next_version(directory)
                full_manifest = write_manifest(version)
                os.rename(staging, directory / str(version))
                (directory / _COUNTER_NAME).write_text(str(version))
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return PublishedVersion(version, directory / str(version), full_manifest)


def _onnx_copy(
    module: ServingGenerator, staging: Path, memory_limit_bytes: int | None
) -> dict[str, Any] | None:
    """The ONNX copy's manifest record; a failed conversion fails alone: the version is published without the
    copy (TensorFlow serves all of it) and the record says why."""
    if not onnx_export_available():
        return None
    try:
        return write_onnx(staging, module.hints, memory_limit_bytes)
    except OnnxConversionFailed as error:
        logger.error("no ONNX copy (%s); publishing the SavedModel alone", error)
        return {"error": str(error)}
    except Exception as error:  # the SavedModel is what matters: TensorFlow serves it without an ONNX copy
        logger.exception("could not write the ONNX copy; publishing the SavedModel alone")
        (staging / ONNX_FILE).unlink(missing_ok=True)
        return {"error": type(error).__name__}


def _next_version(directory: Path) -> int:
    """One more than any version ever published here, even one deleted since (numbers are never reused)."""
    counter = directory / _COUNTER_NAME
    last_recorded = int(counter.read_text().strip() or 0) if counter.is_file() else 0
    existing = numbered_versions(directory)
    return max([last_recorded, *existing]) + 1


def load_serving_function(version_path: str | os.PathLike):
    """Load a published version with plain tf.saved_model.load; return `colorize(sketches, hints=None)`.

    `colorize.accepts_hints` says whether the version has the `colorize_with_hints` signature; hints given to
    one that has not raise ValueError.
    """
    loaded = tf.saved_model.load(str(version_path))
    signature = loaded.signatures[SIGNATURE_KEY]
    hints_signature = loaded.signatures.get(HINTS_SIGNATURE_KEY)

    def colorize(sketches_uint8: Any, hints_rgba: Any = None) -> tf.Tensor:
        sketches = tf.convert_to_tensor(sketches_uint8, dtype=tf.uint8)
        if hints_rgba is None:
            return signature(**{INPUT_NAME: sketches})[OUTPUT_NAME]
        if hints_signature is None:
            raise ValueError(f"version {Path(version_path).name} was trained without hints")
        hints = tf.convert_to_tensor(hints_rgba, dtype=tf.uint8)
        return hints_signature(**{INPUT_NAME: sketches, HINTS_NAME: hints})[OUTPUT_NAME]

    colorize.loaded = loaded  # type: ignore[attr-defined]  # keep the SavedModel's variables alive as long as the function
    colorize.accepts_hints = hints_signature is not None  # type: ignore[attr-defined]
    return colorize
