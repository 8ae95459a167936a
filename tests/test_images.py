import numpy as np
import pytest
from PIL import Image

from ml.common.images import ImageError, image_size, list_images, load_image, load_label, save_label


def test_exif_orientation_is_honoured(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (40, 20, 3)
    assert image_size(tmp_path / "r.jpg") == (20, 40)
    assert out[:15].mean() > 200 and out[-15:].mean() < 50  # white half now on top


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_modes_become_8bit_rgb(tmp_path, mode):
    if mode == "I;16":
        im = Image.fromarray(np.full((10, 12), 40000, np.uint16))
    else:
        im = Image.fromarray(np.full((10, 12, 3), 100, np.uint8)).convert(mode)
    im.save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png")
    assert out.dtype == np.uint8 and out.shape == (10, 12, 3)
    if mode == "I;16":
        assert abs(int(out[0, 0, 0]) - round(40000 / 65535 * 255)) <= 1


def test_tiff_and_bmp(tmp_path):
    Image.fromarray(np.full((8, 9, 3), 7, np.uint8)).save(tmp_path / "a.tif")
    Image.fromarray(np.full((8, 9, 3), 7, np.uint8)).save(tmp_path / "a.bmp")
    assert load_image(tmp_path / "a.tif").shape == (8, 9, 3)
    assert load_image(tmp_path / "a.bmp").shape == (8, 9, 3)


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    for name, words in [("empty.jpg", "empty"), ("junk.png", "not a readable image"),
                        ("missing.png", "not found")]:
        with pytest.raises(ImageError) as e:
            load_image(tmp_path / name)
        assert name in str(e.value) and words in str(e.value)


def test_decompression_bomb_limit_is_kept(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "big.png")


def test_label_round_trip_with_palette(tmp_path):
    lab = np.array([[0, 1], [2, 1]], np.uint8)
    save_label(tmp_path / "m.png", lab, [(0, 0, 0), (255, 0, 0), (0, 255, 0)])
    assert np.array_equal(load_label(tmp_path / "m.png"), lab)
    assert not list(tmp_path.glob(".*.tmp"))


def test_list_images_recurses_and_skips_hidden(tmp_path):
    for rel in ["a.jpg", "sub/b.PNG", ".hidden/c.png", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.jpg", "sub/b.PNG"]


def test_loaded_arrays_are_writable(tmp_path):
    save_label(tmp_path / "m.png", np.zeros((4, 4), np.uint8))
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "i.png")
    assert load_label(tmp_path / "m.png").flags.writeable
    assert load_image(tmp_path / "i.png").flags.writeable
