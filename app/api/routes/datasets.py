"""Routes: datasets."""

from fastapi import APIRouter

router = APIRouter()
