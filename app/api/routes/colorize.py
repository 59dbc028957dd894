"""Routes: colorize."""

from fastapi import APIRouter

router = APIRouter()
