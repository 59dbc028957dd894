"""Files that painting apps open with their layers (model/layers.py's stack, top first):

- `psd`: Photoshop's format (also read by Clip Studio Paint, Krita, GIMP), written by psd-tools: an RGB
  document with layer transparency, one pixel layer per layer with its name, blend mode and visibility; the
  merged image is the composite.
- `ora`: OpenRaster (Krita, GIMP, MyPaint): a zip whose first entry is `mimetype` (stored, uncompressed),
  then `stack.xml` (the layers, top first), `data/<name>.png` per layer, `mergedimage.png` (the composite)
  and `Thumbnails/thumbnail.png` (at most 256x256).
- `zip`: the layer PNGs, `composite.png` and `layers.json` (order, blend modes, visibility) for scripts.

PNGs are written fast (model/fullsize.py's `png_bytes`); zip entries are stored, since PNGs do not shrink.
"""

import io
import json
import zipfile
from typing import Literal
from xml.sax.saxutils import quoteattr

from psd_tools import PSDImage
from psd_tools.constants import BlendMode

from model.fullsize import png_bytes
from model.layers import LayerStack

FileFormat = Literal["png", "psd", "ora", "zip"]
FORMATS: tuple[str, ...] = ("png", "psd", "ora", "zip")
MEDIA_TYPES = {
    "png": "image/png",
    "psd": "image/vnd.adobe.photoshop",
    "ora": "image/openraster",
    "zip": "application/zip",
}
PSD_BLENDS = {"normal": BlendMode.NORMAL, "multiply": BlendMode.MULTIPLY, "soft-light": BlendMode.SOFT_LIGHT}
ORA_BLENDS = {"normal": "svg:src-over", "multiply": "svg:multiply", "soft-light": "svg:soft-light"}
ORA_VERSION = "0.0.5"
THUMBNAIL_SIDE = 256


def layered_file(stack: LayerStack, file_format: str) -> bytes:
    """The stack as a `psd`, `ora` or `zip` file (`png`: the composite alone)."""
    writers = {"png": lambda stack: png_bytes(stack.composite), "psd": psd_bytes, "ora": ora_bytes,
               "zip": zip_bytes}  # fmt: skip
    if file_format not in writers:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {file_format!r}")
    return writers[file_format](stack)


def psd_bytes(stack: LayerStack) -> bytes:
    # An RGBA document: psd-tools keeps a layer's alpha as its transparency there (an RGB one would turn it
    # into a layer mask). The merged image starts as the composite and stays so.
    document = PSDImage.frompil(stack.composite.convert("RGBA"))
    for layer in reversed(stack.layers):  # each new layer goes on top
        added = document.create_pixel_layer(layer.image, name=layer.name, blend_mode=PSD_BLENDS[layer.blend])
        added.visible = layer.visible
    # Adding layers marks the merged image stale, and save() would then re-render it from the layers in
    # float64: 15 s and 2.4 GB at 4096x4096, for the picture it already holds. Tests check that it matches
    # both the PNG result and psd-tools' own rendering of the layers.
    document._updated = False
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def ora_bytes(stack: LayerStack) -> bytes:
    width, height = stack.size
    entries = [f'<layer name={quoteattr(layer.name)} src="data/{layer.name}.png" x="0" y="0" opacity="1.0" '
               f'visibility="{"visible" if layer.visible else "hidden"}" '
               f'composite-op="{ORA_BLENDS[layer.blend]}"/>' for layer in stack.layers]  # fmt: skip
    stack_xml = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<image version="{ORA_VERSION}" w="{width}" h="{height}" xres="72" yres="72">\n'
        "  <stack>\n" + "".join(f"    {entry}\n" for entry in entries) + "  </stack>\n</image>\n"
    )
    thumbnail = stack.composite.copy()
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    files = [
        ("mimetype", b"image/openraster"),  # first and stored: how a reader knows the zip is OpenRaster
        ("stack.xml", stack_xml.encode()),
        *((f"data/{layer.name}.png", png_bytes(layer.image)) for layer in stack.layers),
        ("mergedimage.png", png_bytes(stack.composite)),
        ("Thumbnails/thumbnail.png", png_bytes(thumbnail)),
    ]
    return _zip(files)


def zip_bytes(stack: LayerStack) -> bytes:
    listing = [{"name": layer.name, "file": f"{layer.name}.png", "blend": layer.blend,
                "visible": layer.visible} for layer in stack.layers]  # fmt: skip
    manifest = {"width": stack.size[0], "height": stack.size[1], "layers_top_first": listing,
                "composite": "composite.png"}  # fmt: skip
    files = [
        *((f"{layer.name}.png", png_bytes(layer.image)) for layer in stack.layers),
        ("composite.png", png_bytes(stack.composite)),
        ("layers.json", json.dumps(manifest, indent=2).encode()),
    ]
    return _zip(files)


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()
