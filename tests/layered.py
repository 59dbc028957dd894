"""A drawn test picture for the layered files and the independent readers that check them: psd-tools
(the PSD's layers and merged image), ImageMagick (Debian's `imagemagick`: the PSD's layers, their blend modes
and its own flattening of them; the OpenRaster file's layer PNGs) and the zip structure OpenRaster asks for."""

import io
import shutil
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from PIL import Image, ImageDraw

SIZE = (360, 240)
RECTANGLE = (30, 40, 150, 200)  # black, 4 px
ELLIPSE = (190, 30, 330, 130)  # black, anti-aliased (drawn at 4x and shrunk)
TRIANGLE = ((200, 220), (330, 220), (265, 150))  # a blue pen
BLUE_INK = (40, 70, 200)
HINTS = {(90, 120): (230, 40, 40), (260, 80): (250, 200, 40), (265, 195): (60, 170, 90)}  # dot -> color
HINT_RADIUS = 6


def drawn_sketch(scale: int = 1) -> Image.Image:
    """Closed shapes on white: a black rectangle, an anti-aliased black ellipse, a blue triangle."""
    width, height = SIZE
    big = Image.new("RGB", (width * 4 * scale, height * 4 * scale), "white")
    pen = ImageDraw.Draw(big)
    k = 4 * scale
    pen.ellipse(tuple(value * k for value in ELLIPSE), outline="black", width=3 * k)
    big = big.resize((width * scale, height * scale), Image.Resampling.LANCZOS)
    pen = ImageDraw.Draw(big)
    pen.rectangle(tuple(value * scale for value in RECTANGLE), outline="black", width=4 * scale)
    corners = [(x * scale, y * scale) for x, y in TRIANGLE]
    pen.line([*corners, corners[0]], fill=BLUE_INK, width=3 * scale, joint="curve")
    return big


def hint_dots(scale: int = 1) -> Image.Image:
    """An RGBA hint layer: one colored dot inside each shape, transparent elsewhere."""
    layer = Image.new("RGBA", (SIZE[0] * scale, SIZE[1] * scale), (0, 0, 0, 0))
    pen = ImageDraw.Draw(layer)
    for (x, y), color in HINTS.items():
        r = HINT_RADIUS * scale
        pen.ellipse((x * scale - r, y * scale - r, x * scale + r, y * scale + r), fill=(*color, 255))
    return layer


def encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(data: bytes | Image.Image, mode: str = "RGB") -> np.ndarray:
    image = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    return np.asarray(image.convert(mode)).astype(int)


def assert_close(found: np.ndarray, expected: np.ndarray, what: str, levels: int = 2) -> None:
    assert found.shape == expected.shape, f"{what}: shape {found.shape}, expected {expected.shape}"
    worst = int(np.abs(found - expected).max())
    assert worst <= levels, f"{what}: up to {worst} levels off the PNG result (allowed {levels})"


# ---- ImageMagick ---------------------------------------------------------------------------------------
def imagemagick(tool: str, *arguments: str | Path) -> str:
    """Run one of ImageMagick's tools (identify, convert) and return its output."""
    path = shutil.which(tool)
    assert path is not None, (
        f"ImageMagick's `{tool}` is not installed: sudo apt-get install -y --no-install-recommends imagemagick"
    )
    completed = subprocess.run([path, *map(str, arguments)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, f"{tool} {arguments} failed: {completed.stderr}"
    return completed.stdout


def imagemagick_psd_layers(path: Path) -> list[dict]:
    """The PSD as ImageMagick reads it: frame 0 the merged image, then one frame per layer, bottom first,
    each with its label (name), size and compose operator (None for a hidden layer)."""
    listing = imagemagick("identify", "-format", "%s|%l|%w|%h|%[compose]\n", path)
    frames = []
    for line in listing.strip().splitlines():
        index, label, width, height, compose = line.split("|")
        frames.append({"index": int(index), "name": label, "size": (int(width), int(height)),
                       "compose": compose})  # fmt: skip
    return frames


def imagemagick_flatten(path: Path, out: Path) -> np.ndarray:
    """ImageMagick's own rendering of the PSD's layers (the merged frame left out), on white."""
    imagemagick("convert", path, "-delete", "0", "-background", "white", "-layers", "flatten", out)
    return pixels(Image.open(out))


# ---- OpenRaster ----------------------------------------------------------------------------------------
def ora_structure(data: bytes) -> tuple[list[dict], zipfile.ZipFile]:
    """Check the zip against the OpenRaster spec and return the stack's layers (top first) and the zip:
    `mimetype` first, stored, no extra field (so its bytes sit at offset 38 for a reader's magic check),
    `stack.xml`, every layer's PNG, `mergedimage.png` and a thumbnail of at most 256x256."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    first = archive.infolist()[0]
    assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED and not first.extra, (
        f"the first entry must be the stored `mimetype`, got {first.filename} (compression {first.compress_type})"
    )
    assert archive.read("mimetype") == b"image/openraster"
    assert data[30:38] == b"mimetype" and data[38:54] == b"image/openraster", "mimetype not at offset 30/38"
    root = ElementTree.fromstring(archive.read("stack.xml"))
    assert root.tag == "image" and root.get("version"), root.attrib
    stack = root.find("stack")
    assert stack is not None, "stack.xml has no <stack>"
    layers = [dict(layer.attrib) for layer in stack.findall("layer")]
    names = set(archive.namelist())
    for layer in layers:
        assert layer["src"] in names, f"{layer['src']} is listed in stack.xml but not in the zip"
    assert {"mergedimage.png", "Thumbnails/thumbnail.png"} <= names, sorted(names)
    thumbnail = Image.open(io.BytesIO(archive.read("Thumbnails/thumbnail.png")))
    assert max(thumbnail.size) <= 256, thumbnail.size
    assert (int(root.get("w", 0)), int(root.get("h", 0))) == Image.open(
        io.BytesIO(archive.read("mergedimage.png"))
    ).size
    return layers, archive
