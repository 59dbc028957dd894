"""`sketch2color batch MODELS_DIR IN_DIR OUT_DIR`: a chapter colorized here, pages batched, by their names."""

import io
import zipfile
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from cli.main import cli
from tests.app.conftest import publish_tiny_hint_generator
from tests.chapters import chapter_zip, page_sizes


def test_batch_colorizes_a_folder_of_pages_at_their_sizes_and_names_the_bad_one(tmp_path: Path):
    models, pages, colored = tmp_path / "models", tmp_path / "pages", tmp_path / "colored"
    publish_tiny_hint_generator(models, seed=4)
    with zipfile.ZipFile(io.BytesIO(chapter_zip(9, hinted=2))) as archive:  # 9 pages: two generator calls
        archive.extractall(pages)
    (pages / "chapter" / "zz-broken.png").write_bytes(b"no png at all")

    result = CliRunner().invoke(cli, ["batch", str(models), str(pages), str(colored), "--format", "psd"])

    assert result.exit_code == 1, f"a failed page makes the exit status 1\n{result.output}"
    assert "failed: chapter/zz-broken.png" in result.output, result.output
    assert "wrote 9 pages" in result.output, result.output
    written = sorted(path.name for path in (colored / "chapter").iterdir())
    assert written == [f"p{index:02d}.psd" for index in range(9)], written
    for index, size in enumerate(page_sizes(9)):
        assert Image.open(colored / "chapter" / f"p{index:02d}.psd").size == size, index
