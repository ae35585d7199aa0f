"""``aecodec compare`` (``codec/compare``): the other codecs matched to aecodec's bytes, the page
self-contained and showing exactly the decoded pixels, the command's errors, and the page in a real
browser (headless Chromium, slow)."""

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
import codec.compare
from codec import cli
from codec.compare import others

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def photos() -> dict:
    """A colour photo crop (80x100) and a grey one (96x96), none of them trained on."""
    return {
        "coffee": np.load(DATA / "format6-coffee-lossless.npy"),
        "moon": np.load(DATA / "format6-moon-lossless.npy"),
    }


@pytest.fixture(scope="module")
def results(photos) -> list:
    return codec.compare.measure(photos, qualities=(3, 8, 12))


def _data(page: bytes) -> dict:
    found = re.search(rb'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


def _pixels(url: str) -> np.ndarray:
    head, payload = url.split(",", 1)
    assert head == "data:image/webp;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as im:
        return np.asarray(im.convert("RGB"))


def test_each_codec_is_matched_to_the_setting_nearest_aecodecs_bytes(photos, results):
    for result in results:
        assert [level["quality"] for level in result["levels"]] == [3, 8, 12]
        for level in result["levels"]:
            target = level["panels"]["aecodec"]["bytes"]
            for key in others.CODECS:
                coder = others.Other(key, photos[result["name"]])
                panel = level["panels"][key]
                assert panel["bytes"] == coder.at(panel["setting"])[0]
                gap = abs(np.log(panel["bytes"] / target))
                for s in (panel["setting"] - 1, panel["setting"] + 1):
                    if s in others.SETTINGS:  # a neighbouring setting is never nearer
                        assert abs(np.log(coder.at(s)[0] / target)) >= gap - 1e-12
                smallest = panel["setting"] == 1 and panel["bytes"] > 1.1 * target
                assert (panel["bound"] == "its smallest file") == smallest


def test_aecodecs_panels_are_its_files_decoded(photos, results):
    model = codec.load_model(codec.api.PHOTO_MODEL)
    for result in results:
        assert result["model"] == model.name
        for level in result["levels"]:
            panel = level["panels"]["aecodec"]
            blob = codec.compress(photos[result["name"]], quality=level["quality"], model=model)
            assert len(blob) == panel["bytes"]
            assert np.array_equal(codec.decompress(blob), panel["picture"])
        curve = [p["bytes"] for p in result["curves"]["aecodec"]]
        assert curve == sorted(curve) and len(curve) >= 10  # every lossy level, smallest first


def test_the_page_is_self_contained_and_holds_the_exact_pictures(results):
    page = codec.compare.page(results)
    assert not re.search(rb'(src|href)\s*=\s*"(https?:)?//|url\(\s*https?:|<link|@import', page)
    data = _data(page)
    assert [im["name"] for im in data["images"]] == ["coffee", "moon"]
    for shown, result in zip(data["images"], results, strict=True):
        assert _same(shown["original"], result["original"])
        for level, measured in zip(shown["levels"], result["levels"], strict=True):
            for key, panel in level["panels"].items():
                assert _same(panel["picture"], measured["panels"][key]["picture"]), key


def _same(url: str, want: np.ndarray) -> bool:
    got = _pixels(url)
    return np.array_equal(got if want.ndim == 3 else got[..., 0], want)


def test_large_images_are_cut_to_their_centre_and_alpha_is_left_out():
    rgba = np.zeros((1500, 1100, 4), np.uint8)
    rgba[700:800, 500:600, 0] = 255
    image, note = codec.compare.fitted(rgba, max_side=1024)
    assert image.shape == (1024, 1024, 3) and image[462:562, 462:562, 0].min() == 255
    assert "alpha channel left out" in note and "central 1024x1024 of 1100x1500" in note
    with pytest.raises(codec.InputError, match="8-bit images"):
        codec.compare.fitted(np.zeros((8, 8), np.uint16))


def _files(folder: Path, photos: dict) -> list[str]:
    Image.fromarray(photos["coffee"]).save(folder / "coffee.png")
    Image.fromarray(photos["moon"]).save(folder / "moon.jpg", quality=95)
    return [str(folder / "coffee.png"), str(folder / "moon.jpg")]


def test_the_command_writes_the_page_and_prints_the_numbers(tmp_path, photos, capsys):
    files = _files(tmp_path, photos)
    out = tmp_path / "page.html"
    assert cli.main(["compare", *files, "--qualities", "4,9", "-o", str(out)]) == 0
    data = _data(out.read_bytes())
    assert [len(im["levels"]) for im in data["images"]] == [2, 2]
    err = capsys.readouterr().err
    assert re.search(r"coffee\.png: quality 4: aecodec [\d,]+ B [\d.]+ dB; webp", err)
    folder = tmp_path / "folder"
    (folder / "inner").mkdir(parents=True)
    Image.fromarray(photos["moon"]).save(folder / "inner" / "moon.png")
    (folder / "notes.txt").write_text("not an image")
    both = tmp_path / "both.html"
    assert (
        cli.main(["compare", "-q", files[0], str(folder), "--qualities", "6", "-o", str(both)]) == 0
    )
    names = [im["name"] for im in _data(both.read_bytes())["images"]]
    assert names == [files[0], str(folder / "inner" / "moon.png")]  # a folder: its images
    assert cli.main(["compare", "-q", files[1], "--qualities", "6", "-o", "-"]) == 0
    assert _data(capsys.readouterr().out.encode())["images"][0]["name"] == files[1]  # stdout
    (tmp_path / "empty").mkdir()
    assert cli.main(["compare", files[0], str(tmp_path / "empty"), "-o", str(both), "-f"]) == 1
    assert f"{tmp_path / 'empty'}: no image files in this folder" in capsys.readouterr().err
    cut = tmp_path / "cut.html"
    assert (
        cli.main(
            ["compare", "-q", files[1], "--qualities", "6", "--max-side", "64", "-o", str(cut)]
        )
        == 0
    )
    shown = _data(cut.read_bytes())["images"][0]
    assert (shown["width"], shown["height"]) == (64, 64) and "central 64x64 of 96x96" in shown[
        "note"
    ]
    assert cli.main(["compare", *files, "-o", str(out)]) == 1  # exists: not without -f
    assert "already exists" in capsys.readouterr().err
    before = Path(files[1]).read_bytes()
    assert cli.main(["compare", "-q", *files, "-f", "-o", files[1]]) == 2  # an input: never
    assert f"is the input {files[1]}" in capsys.readouterr().err
    assert Path(files[1]).read_bytes() == before


def test_the_command_names_a_bad_image_and_writes_nothing(tmp_path, photos, capsys):
    files = _files(tmp_path, photos)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    Image.fromarray(np.zeros((8, 8), np.uint16) + 3000).save(tmp_path / "deep.png")
    out = tmp_path / "page.html"
    for bad, message in (
        ("bad.png", "not an image"),
        ("deep.png", "compare takes 8-bit images"),
        ("missing.png", "No such file or directory"),
    ):
        assert cli.main(["compare", files[0], str(tmp_path / bad), "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"aecodec: error: {tmp_path / bad}: ") and message in err, err
        assert not out.exists()
    with pytest.raises(SystemExit) as e:
        cli.main(["compare", files[0], "--qualities", "14", "-o", str(out)])
    assert e.value.code == 2 and "lossy qualities are 1 to 13" in capsys.readouterr().err


# The page in a real browser: Debian's chromium and chromium-driver (scripts/setup.sh --browser
# installs them), driven by Selenium.


def _browser():
    pytest.importorskip("selenium.webdriver")
    if not (shutil.which("chromedriver") and shutil.which("chromium")):
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup.sh --browser)")
    from benchmarks.compare_page import headless_chromium

    return headless_chromium()


def _ready(browser, section) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(lambda _: section.get_attribute("data-ready") == "1")


def _shown(canvas) -> np.ndarray:
    canvas.parent.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    with Image.open(io.BytesIO(canvas.screenshot_as_png)) as im:
        return np.asarray(im.convert("RGB")).astype(int)[1:-1, 1:-1]  # inside its 1-pixel border


@pytest.mark.slow
def test_the_page_in_chromium_clicks_through_the_levels_moves_and_zooms(tmp_path, results):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = tmp_path / "page.html"
    page.write_bytes(codec.compare.page(results))
    browser = _browser()
    try:
        browser.get(page.as_uri())
        sections = browser.find_elements(By.CSS_SELECTOR, "section.image")
        assert len(sections) == 2
        for section, result in zip(sections, results, strict=True):
            assert section.get_attribute("data-zoom") == "2"  # small pictures start zoomed in
            section.find_element(By.CSS_SELECTOR, 'button.zoom[data-zoom="1"]').click()
            buttons = section.find_elements(By.CSS_SELECTOR, "button.level")
            assert len(buttons) == len(result["levels"])
            for button, level in zip(buttons, result["levels"], strict=True):
                button.click()
                _ready(browser, section)
                caption = section.find_element(By.CSS_SELECTOR, 'figcaption[data-codec="aecodec"]')
                assert caption.get_attribute("data-bytes") == str(
                    level["panels"]["aecodec"]["bytes"]
                )
                x, y, w, h = (int(section.get_attribute(f"data-{k}")) for k in "xywh")
                for key in ("aecodec", "avif"):  # at 1x the canvas shows the decoded pixels
                    canvas = section.find_element(By.CSS_SELECTOR, f'canvas[data-codec="{key}"]')
                    want = level["panels"][key]["picture"][y : y + h, x : x + w].astype(int)
                    got = _shown(canvas)
                    want = want if want.ndim == 3 else want[..., None]
                    assert got.shape[:2] == (h, w) and np.abs(got - want).max() <= 2, key
            section.find_element(By.CSS_SELECTOR, 'button.zoom[data-zoom="4"]').click()
            assert section.get_attribute("data-zoom") == "4"
            assert int(section.get_attribute("data-w")) == min(result["original"].shape[1], 64)
            canvas = section.find_element(By.CSS_SELECTOR, 'canvas[data-codec="webp"]')
            before = section.get_attribute("data-x"), section.get_attribute("data-y")
            ActionChains(browser).drag_and_drop_by_offset(canvas, -40, -40).perform()
            assert (section.get_attribute("data-x"), section.get_attribute("data-y")) != before
            section.find_elements(By.CSS_SELECTOR, "tr.level")[0].click()
            _ready(browser, section)
            assert section.get_attribute("data-level") == "0"
        shot = tmp_path / "page.png"
        assert browser.save_screenshot(str(shot))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        browser.quit()
    assert not errors
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    assert pixels.shape[1] == 1600 and pixels.std() > 20  # the page drawn, not a blank window
    chart_colours = {(214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189)}
    assert sum(int(np.all(pixels == c, axis=-1).sum() > 20) for c in chart_colours) == 4
