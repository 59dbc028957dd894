"""Routes: the published generator versions and the serving policy (which one is served, labels, deletion).

Reads are public, like /colorize; changes need the API token when one is set. The policy is a file in the data
folder (storage/serving_policy.py), so every API replica follows a change on its next poll, and it survives
restarts. File work blocks, so these routes are plain `def` (FastAPI runs them in its thread pool).
"""

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.api.deps import ApiTokenDep, ModelStoreDep, SettingsDep
from app.api.errors import error_responses
from app.api.openapi import PNG_FILE
from storage import serving_policy
from storage.serving_policy import (
    LABEL_PATTERN,
    GateDecision,
    InvalidBasePath,
    InvalidLabel,
    InvalidVersion,
    LabelNotFound,
    VersionInUse,
    VersionNotPublished,
    check_served,
    check_version_number,
    label,
    pin,
    read_policy,
    served_version,
    tf_serving_config,
    unlabel,
)
from storage.versions import generator_dir, list_versions

router = APIRouter(tags=["models"])


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(
        *statuses,
        e404="No such version or label.",
        e409="The version is served or labelled.",
        e400="The body is not JSON.",
        e422="A bad version number, label name or body.",
    )


class ModelVersion(BaseModel):
    version: int
    active: bool = Field(description="Served now by this API process.")
    created: str | None
    job_id: str | None = None
    dataset: str | None = None
    step: int | None = None
    hints: bool = Field(False, description="Accepts color hints (POST /colorize's `hints` field).")
    val: dict[str, float] | None = Field(
        None,
        description="Validation metrics: l1, psnr, ssim; a hint model also l1_hints10, psnr_hints10, "
        "ssim_hints10 (with 10 simulated hints per image).",
    )
    gate: GateDecision | None = Field(None, description="The quality gate's decision when it was published.")
    labels: list[str] = []
    has_sample: bool = Field(False, description="GET /models/{version}/sample.png has a thumbnail.")
    error: str | None = Field(None, description="Why the version could not be loaded, if it could not.")
    engine: dict[str, Any] | None = Field(
        None,
        description="For a loaded version: which engine serves a batch of one (`onnxruntime` when the "
        "version's ONNX copy agrees with the SavedModel and is faster, else `tensorflow`), why, and the timings.",
    )
    manifest: dict[str, Any]


class Policy(BaseModel):
    served: int | Literal["latest"] = Field(
        description="A pinned version, or the newest that passed the gate."
    )
    labels: dict[str, int]


class DamagedVersion(BaseModel):
    version: int
    error: str = Field(description="Why its folder cannot be read as a published version.")


class ModelsResponse(BaseModel):
    active_version: int | None
    loading_version: int | None
    poll_seconds: float
    policy: Policy
    problem: str | None = Field(None, description="Why the policy's choice is not what is served, if so.")
    versions: list[ModelVersion] = Field(description="Newest first.")
    damaged: list[DamagedVersion] = Field(
        [], description="Version folders that cannot be read (a damaged manifest, missing files): not served."
    )


def _as_value_error(check: Any) -> Any:
    """A storage check as a pydantic validator: its refusal becomes the 422's detail."""

    def validate(value: Any) -> Any:
        try:
            return check(value)
        except InvalidVersion as error:
            raise ValueError(str(error)) from None

    return validate


class ServeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Checked before pydantic's lax coercion, which would read `true` as 1 and "2" as 2.
    version: Annotated[int | Literal["latest"], BeforeValidator(_as_value_error(check_served))] = Field(
        description='A published version to pin (a JSON integer >= 1), or "latest".'
    )


class LabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Annotated[int, BeforeValidator(_as_value_error(check_version_number))] = Field(ge=1)


LabelName = Path(pattern=f"^{LABEL_PATTERN}$", description="e.g. stable, canary")


@router.get("/models", response_model=ModelsResponse)
async def list_models(store: ModelStoreDep) -> dict[str, Any]:
    """Every complete published version with its metrics, gate decision and labels; the policy; which is served."""
    return await asyncio.to_thread(store.describe)


def _not_found(error: VersionNotPublished | LabelNotFound) -> HTTPException:
    return HTTPException(404, f"{error}; GET /models lists them")


@router.put(
    "/models/active", response_model=Policy, dependencies=[ApiTokenDep], responses=errors(400, 401, 404, 422)
)
def serve_version(request: ServeRequest, settings: SettingsDep) -> dict[str, Any]:
    """Pin a version (`{"version": 3}`), or go back to the newest that passed the gate (`{"version": "latest"}`).
    Every API replica serves it within one poll interval."""
    try:
        return pin(settings.models_dir, request.version).to_json()
    except VersionNotPublished as error:
        raise _not_found(error) from None


@router.put(
    "/models/labels/{name}",
    response_model=Policy,
    dependencies=[ApiTokenDep],
    responses=errors(400, 401, 404, 422),
)
def set_label(request: LabelRequest, settings: SettingsDep, name: str = LabelName) -> dict[str, Any]:
    """Point a label at a version; `POST /colorize?version=<label>` then uses it. Names that read as a version
    (`latest`, `v3`) are reserved (422)."""
    try:
        return label(settings.models_dir, name, request.version).to_json()
    except VersionNotPublished as error:
        raise _not_found(error) from None
    except InvalidLabel as error:  # the path's pattern let it through: a reserved name
        raise HTTPException(422, f"name: {error}") from None


@router.delete(
    "/models/labels/{name}",
    response_model=Policy,
    dependencies=[ApiTokenDep],
    responses=errors(400, 401, 404, 422),
)
def delete_label(settings: SettingsDep, name: str = LabelName) -> dict[str, Any]:
    """Remove a label (the version stays)."""
    try:
        return unlabel(settings.models_dir, name).to_json()
    except LabelNotFound as error:
        raise _not_found(error) from None


@router.delete("/models/{version:int}", dependencies=[ApiTokenDep], responses=errors(401, 404, 409, 422))
def delete_version(settings: SettingsDep, version: int = Path(ge=1)) -> dict[str, Any]:
    """Delete a version that is neither served nor labelled (409 otherwise). Its number is never reused."""
    try:
        serving_policy.delete_version(settings.models_dir, version)
    except VersionNotPublished as error:
        raise _not_found(error) from None
    except VersionInUse as error:
        raise HTTPException(409, str(error)) from None
    return {"deleted": version}


@router.get(
    "/models/{version:int}/sample.png",
    response_class=FileResponse,
    responses={200: PNG_FILE, **errors(404, 422)},
)
def get_version_sample(settings: SettingsDep, version: int = Path(ge=1)) -> FileResponse:
    """A thumbnail from the job that published the version: sketch | output | truth on one validation pair."""
    path = generator_dir(settings.models_dir) / str(version) / "sample.png"
    if not path.is_file():
        raise HTTPException(404, f"version {version} has no sample thumbnail")
    return FileResponse(path, media_type="image/png")


@router.get("/models/tf-serving.config", response_class=PlainTextResponse, responses=errors(422))
def get_tf_serving_config(settings: SettingsDep, base_path: str = "/models/generator") -> str:
    """The same choice as a TensorFlow Serving model config, so TF Serving can serve this folder alike.
    `base_path` is escaped into the config; one holding a line break or another control character is 422."""
    versions = list_versions(settings.models_dir)
    policy = read_policy(settings.models_dir)
    served = served_version(versions, policy)
    try:
        return tf_serving_config(policy, served.version if served else None, base_path)
    except InvalidBasePath as error:
        raise HTTPException(422, str(error)) from None
