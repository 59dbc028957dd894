"""Archives made here, imported as a user's upload would be: every layout, and every hostile case refused."""

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.dataset_import import BadArchive, ImportLimits, ImportOptions, import_archive, inspect_archive
from model.synthetic import draw_pair, make_pair_image

LIMITS = ImportLimits(max_files=50, max_unpacked_bytes=5_000_000, max_pixels=1_000_000)


def png(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def pair(seed: int, swapped: bool = False) -> bytes:
    import random

    color, sketch = draw_pair(random.Random(seed), 64)
    return png(make_pair_image(sketch, color) if swapped else make_pair_image(color, sketch))


def picture(seed: int, size=(90, 70)) -> bytes:
    rng = np.random.default_rng(seed)
    array = np.zeros((size[1], size[0], 3), np.uint8)
    array[10:50, 20:70] = rng.integers(0, 255, 3)
    return png(Image.fromarray(array), "JPEG")


def make_zip(path: Path, entries: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def halves(file: Path) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(Image.open(file).convert("RGB"))
    return image[:, : image.shape[1] // 2], image[:, image.shape[1] // 2 :]


def test_pairs_in_train_and_val_folders_under_a_top_folder(tmp_path):
    entries = {f"mine/train/{i}.png": pair(i) for i in range(4)} | {"mine/val/v.png": pair(9)}
    entries["__MACOSX/mine/._v.png"] = b"resource fork"  # ignored, not an error
    report = import_archive(make_zip(tmp_path / "a.zip", entries), tmp_path / "out", ImportOptions(), LIMITS)
    assert report.counts == {"train": 4, "val": 1}
    assert sorted(p.name for p in (tmp_path / "out" / "train").iterdir()) == [
        "0.png",
        "1.png",
        "2.png",
        "3.png",
    ]


def test_flat_pairs_get_a_seeded_validation_split(tmp_path):
    entries = {f"p{i:02d}.png": pair(i) for i in range(20)}
    options = ImportOptions(val_fraction=0.2, seed=3)
    first = import_archive(make_zip(tmp_path / "a.zip", entries), tmp_path / "one", options, LIMITS)
    import_archive(tmp_path / "a.zip", tmp_path / "two", options, LIMITS)
    assert first.counts == {"train": 16, "val": 4}
    assert sorted(p.name for p in (tmp_path / "one" / "val").iterdir()) == sorted(
        p.name for p in (tmp_path / "two" / "val").iterdir()
    ), "same seed, same split"


def test_swapped_pairs_are_stored_in_the_anime_layout(tmp_path):
    entries = {"train/a.png": pair(1, swapped=True), "val/b.png": pair(2, swapped=True)}
    import_archive(
        make_zip(tmp_path / "a.zip", entries), tmp_path / "out", ImportOptions(sketch_side="left"), LIMITS
    )
    left, right = halves(tmp_path / "out" / "train" / "a.png")
    expected_left, expected_right = halves_of(pair(1))
    assert np.array_equal(left, expected_left) and np.array_equal(right, expected_right)


def halves_of(data: bytes):
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return image[:, : image.shape[1] // 2], image[:, image.shape[1] // 2 :]


def test_pictures_become_pairs_with_extracted_sketches(tmp_path):
    entries = {f"photos/{i}.jpg": picture(i) for i in range(6)}
    options = ImportOptions(kind="pictures", size=64)
    report = import_archive(make_zip(tmp_path / "a.zip", entries), tmp_path / "out", options, LIMITS)
    assert report.counts["train"] + report.counts["val"] == 6 and report.counts["val"] >= 1
    made = next((tmp_path / "out" / "train").iterdir())
    color, sketch = halves(made)
    assert Image.open(made).size == (128, 64)
    assert sketch.std() < color.std() + 200 and (sketch >= 200).mean() > 0.5, "a sketch is mostly white paper"


@pytest.mark.parametrize(
    ("entries", "links", "message"),
    [
        ({"../evil.png": b"x", "ok.png": b"x"}, (), "path traversal"),
        ({"a/../../evil.png": b"x"}, (), "path traversal"),
        ({"/etc/evil.png": b"x"}, (), "absolute"),
        ({"C:\\\\evil.png": b"x"}, (), "absolute"),
        ({"train/a.png": b"x"}, ("train/link.png",), "symbolic links"),
        ({"train/a.png": b"x", "inner.zip": b"PK"}, (), "archives inside"),
        ({"train/a.png": b"x", "notes.txt": b"hello"}, (), "not an image"),
        ({"train/a.png": b"x", "train/sub/a.png": b"y"}, (), "same name"),
        ({"train/a.png": b"x"}, (), "give both train/ and val/"),
        ({"train/a.png": b"x", "b.png": b"y"}, (), "some images are in train/"),
        ({}, (), "no images"),
        ({f"{i}.png": b"x" for i in range(51)}, (), "over the limit of 50"),
        ({"bomb.png": b"\0" * 4_000_000}, (), "zip bomb"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "windows", "symlink", "nested-archive", "non-image", "duplicate",
         "one-split", "mixed-layout", "empty", "too-many-files", "bomb-ratio"],
)  # fmt: skip
def test_hostile_archives_are_refused_from_their_directory(tmp_path, entries, links, message):
    archive = make_zip(tmp_path / "a.zip", entries, links)
    with pytest.raises(BadArchive, match=message):
        inspect_archive(archive, LIMITS)


def test_too_many_unpacked_bytes_and_not_a_zip(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, 3_000_000, dtype=np.uint8).tobytes()
    archive = make_zip(tmp_path / "a.zip", {"train/a.png": noise, "val/b.png": noise})
    with pytest.raises(BadArchive, match="unpacked, over the limit"):
        inspect_archive(archive, LIMITS)
    (tmp_path / "b.zip").write_bytes(b"not a zip at all")
    with pytest.raises(BadArchive, match="not a zip archive"):
        inspect_archive(tmp_path / "b.zip", LIMITS)


def test_images_over_the_pixel_limit_are_skipped_and_reported_or_fail(tmp_path):
    big = png(Image.new("RGB", (2000, 1000), "white"))
    entries = {"train/a.png": pair(1), "train/big.png": big, "val/b.png": pair(2)}
    archive = make_zip(tmp_path / "a.zip", entries)
    report = import_archive(archive, tmp_path / "skip", ImportOptions(), LIMITS)
    assert report.skipped == ["train/big.png"] and report.counts == {"train": 1, "val": 1}
    with pytest.raises(BadArchive, match="'train/big.png'.*limit is 1000000"):
        import_archive(archive, tmp_path / "fail", ImportOptions(oversize="fail"), LIMITS)


def test_an_undecodable_image_or_a_non_pair_fails_naming_the_file(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"train/a.png": pair(1), "train/broken.png": b"\x89PNG garbage",
                                            "val/b.png": pair(2)})  # fmt: skip
    with pytest.raises(BadArchive, match="'train/broken.png'"):
        import_archive(archive, tmp_path / "out", ImportOptions(), LIMITS)
    square = make_zip(
        tmp_path / "b.zip", {"train/a.png": png(Image.new("RGB", (64, 64))), "val/b.png": pair(2)}
    )
    with pytest.raises(BadArchive, match="'train/a.png': 64x64 is not a pair.*kind=pictures"):
        import_archive(square, tmp_path / "out2", ImportOptions(), LIMITS)


@pytest.mark.parametrize("entries", [1_200, 66_000], ids=["end-record", "zip64-end-record"])
def test_a_directory_of_far_too_many_entries_is_refused_from_its_end_record(tmp_path, entries):
    """A zip that is mostly central directory is refused from the count its end record declares, before
    zipfile builds an object per entry (the other path would say "holds no images" for these folders)."""
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for index in range(entries):
            zipped.writestr(zipfile.ZipInfo(f"d{index}/"), b"")
    with pytest.raises(BadArchive, match=f"{entries} entries, far over the limit of 50"):
        inspect_archive(archive, LIMITS)


def _patched(path: Path, old: bytes, new: bytes) -> Path:
    """The zip at `path` with `old` replaced by `new` everywhere (local header and central directory)."""
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new))
    return path


def test_odd_entry_names_encryption_and_bad_utf8_are_refused_with_a_reason(tmp_path):
    """Each used to reach zipfile or the file system and end as a 500, or be accepted and fail later."""
    image = png(Image.new("RGB", (4, 4)))
    cases = {}
    for key, name in {"empty": "", "dot": ".", "long": "x" * 300 + ".png"}.items():
        archive = tmp_path / f"{key}.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("val/ok.png", image)
            zipped.writestr(zipfile.ZipInfo(name), image)
        cases[key] = (archive, "needs a file name" if key != "long" else "too long")
    encrypted = make_zip(tmp_path / "encrypted.zip", {"train/a.png": image, "val/b.png": image})
    data = bytearray(encrypted.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers
        at = data.find(signature)
        data[at + flag_offset] |= 0x1  # "encrypted", as a password-protected zip marks its entries
    encrypted.write_bytes(bytes(data))
    cases["encrypted"] = (encrypted, "encrypted")
    nul = make_zip(tmp_path / "nul.zip", {"val/ok.png": image, "train/aQb.png": image})
    cases["nul"] = (_patched(nul, b"aQb", b"a\x00b"), "'train/a': not an image")  # zipfile cuts at the NUL
    bad_utf8 = make_zip(tmp_path / "utf8.zip", {"train/caf\u00e9.png": image})  # stored with the UTF-8 flag
    cases["bad utf-8"] = (_patched(bad_utf8, "caf\u00e9".encode(), b"caf\xff\xfe"), "cannot read the zip's")
    for key, (archive, message) in cases.items():
        with pytest.raises(BadArchive, match=message) as refused:
            inspect_archive(archive, LIMITS)
        assert str(archive) not in str(refused.value), f"{key}: no server path in the reason"
