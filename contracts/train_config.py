"""Every training hyper-parameter, declared once with its default, bounds and help text.

The trainer takes a `TrainConfig`; the API's `POST /jobs` body is this model plus a dataset name; the CLI's
`sketch2color train` options are generated from its fields. A parameter added here appears in all three.
"""

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from storage.serving_policy import Promote

Norm = Literal["instance", "batch"]
SketchSide = Literal["right", "left"]
Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
# What must match for a run folder's checkpoints to fit the networks being built, and what a run folder
# written before a field existed meant by it.
ARCHITECTURE_FIELDS = ("ngf", "ndf", "norm", "hints")
ARCHITECTURE_BEFORE_FIELD = {"hints": False}


class TrainConfig(BaseModel):
    """pix2pix hyper-parameters; everything but the length (epochs or steps) defaults to the paper's value."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        validate_assignment=True,
        # The schema says it too, for generated clients: exactly one of epochs or steps.
        json_schema_extra={"oneOf": [{"required": ["epochs"]}, {"required": ["steps"]}]},
    )

    epochs: int | None = Field(None, ge=1, le=100_000, description="Train this many epochs (or give steps).")
    steps: int | None = Field(
        None, ge=1, le=100_000_000, description="Train this many steps in total (or give epochs)."
    )
    batch_size: int = Field(1, ge=1, le=1024, description="Images per training step.")
    learning_rate: float = Field(
        2e-4,
        gt=0,
        le=1,
        validation_alias=AliasChoices("learning_rate", "lr"),
        description="Adam learning rate of both networks (alias lr).",
    )
    beta_1: float = Field(0.5, ge=0, lt=1, description="Adam beta1 of both networks (0.5 = the paper).")
    lambda_l1: float = Field(
        100.0, ge=0, le=10_000, description="Weight of the L1 loss against the GAN loss (100 = the paper)."
    )
    ngf: int = Field(64, ge=1, le=1024, description="Generator width (64 = the paper).")
    ndf: int = Field(64, ge=1, le=1024, description="Discriminator width (64 = the paper).")
    norm: Norm = Field("instance", description="instance (default) or batch (the TF tutorial's).")
    hints: bool = Field(
        True,
        description="Train the generator to follow color hints (simulated from the true colors); false "
        "trains the plain sketch-only generator.",
    )
    lr_decay_fraction: float = Field(
        0.0, ge=0, le=1, description="Decay the learning rate linearly to 0 over this last share of steps."
    )
    checkpoint_every: int = Field(
        500, ge=1, le=100_000_000, description="Checkpoint, score and draw a sample grid every N steps."
    )
    export_every: int = Field(
        0,
        ge=0,
        le=100_000_000,
        description="Publish a generator version every N steps (0 = only at the end).",
    )
    log_every: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="Progress and metrics every N steps (default: about 100 points per run, the first step, "
        "and at least every 5 s of training).",
    )
    keep_checkpoints: int = Field(3, ge=1, le=1000, description="Checkpoints kept; older ones are deleted.")
    val_samples: int = Field(
        8, ge=1, le=256, description="Validation pairs scored at each checkpoint and shown in sample grids."
    )
    shuffle_buffer: int = Field(400, ge=1, le=100_000, description="Training pairs shuffled at a time.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Same seed, same initial weights and order.")
    xla: bool = Field(False, description="Compile the training step with XLA.")
    sketch_side: SketchSide = Field(
        "right", description="right (the anime pair layout) or left (aligned pairs, swapped)."
    )
    promote: Promote = Field(
        "auto",
        description="Serve the published versions: auto (only if no worse than the served one on the same "
        "dataset), always, or never (publish only).",
    )
    onnx: bool = Field(
        True,
        description="Also write an ONNX copy of each published version (when the onnx extra is installed); "
        "the API serves lone requests with it where it is faster.",
    )
    precision: Precision = Field(
        "auto",
        description="auto (mixed_float16 on GPUs; mixed_bfloat16 on CPUs with AVX512-BF16 or AMX at width >= 32; "
        "else float32), float32, mixed_float16 or mixed_bfloat16.",
    )

    @model_validator(mode="after")
    def _exactly_one_length(self) -> "TrainConfig":
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of epochs or steps")
        return self

    def total_steps(self, train_size: int) -> int:
        """The run's length in steps: the one place epochs are turned into steps."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None  # the validator guarantees one of the two
        return math.ceil(self.epochs * train_size / self.batch_size)


def explain(error: ValidationError) -> str:
    """One line per problem, naming the field: `ngf: Input should be greater than or equal to 1 (got 0)`."""
    return describe_problems(error.errors(include_url=False))


def describe_problems(errors: Sequence[Any]) -> str:
    """Pydantic's error list as one short string (FastAPI's request errors have the same shape)."""
    problems = []
    for problem in errors:
        location = [str(part) for part in problem["loc"] if part not in ("body", "query")] or ["body"]
        field = ".".join(location)
        message = problem["msg"].removeprefix("Value error, ")
        shown = repr(problem.get("input"))
        if len(shown) > 80:
            shown = shown[:77] + "..."
        got = f" (got {shown})" if problem["type"] not in ("missing", "value_error", "model_type") else ""
        problems.append(f"{field}: {message}{got}")
    return "; ".join(problems)
