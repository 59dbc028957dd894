"""The one exception-to-status table (app/api/errors.py): every client mistake the lower layers raise has a
status by its type, and one it does not know stays an error of ours."""

import pytest

from app.api.errors import client_error, status_of
from contracts.datasets import BadDatasetName, DatasetExists
from model.dataset_import import BadArchive, NotAZipArchive
from model.imageio import BadImage, EmptyImage, ImageTooLarge, NoHintAlpha, NotAnImage, UndecodableImage


@pytest.mark.parametrize(
    ("error", "status"),
    [(EmptyImage("empty"), 400), (UndecodableImage("broken"), 400), (NotAnImage("text"), 415),
     (ImageTooLarge("big"), 413), (NoHintAlpha("no alpha"), 422), (BadImage("odd"), 400),
     (NotAZipArchive("not a zip archive: x"), 415), (BadArchive("'a.txt': not an image"), 422),
     (BadDatasetName("bad"), 422), (DatasetExists("taken"), 409)],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)  # fmt: skip
def test_each_client_mistake_has_its_status_by_type(error: Exception, status: int) -> None:
    assert status_of(error) == status
    answer = client_error(error, "part: ")
    assert (answer.status_code, answer.detail) == (status, f"part: {error}")


def test_every_image_error_kind_is_in_the_table_and_a_new_one_takes_its_base_s_status() -> None:
    assert all(status_of(kind("x")) is not None for kind in BadImage.__subclasses__())

    class NewArchiveProblem(BadArchive):
        pass

    assert status_of(NewArchiveProblem("x")) == 422
    assert status_of(ValueError("ours")) is None
    with pytest.raises(TypeError, match="ValueError"):
        client_error(ValueError("ours"))
