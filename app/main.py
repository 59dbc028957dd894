"""The FastAPI application factory and its lifespan (model store, micro-batcher, Celery client)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.routes import colorize, datasets, health, jobs, models, pages
from app.core.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Filled in by the model store / batcher owners: start background work here, stop it after `yield`.
        yield

    app = FastAPI(
        title="sketch2color",
        summary="Colorize black-and-white sketches with pix2pix, and train the models yourself.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Model-Version", "Location", "Retry-After"],
        )
    for router in (colorize.router, models.router, health.router, datasets.router, jobs.router, pages.router):
        app.include_router(router)
    return app
