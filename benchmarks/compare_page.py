"""The comparison page of ``docs/`` (issue 31): ``aecodec compare`` on two held-out photos, and a
screenshot of it in headless Chromium.

    python -m benchmarks.compare_page [--out docs/compare.html] [--qualities 4,7,10]

The photos are the two photographs among the held-out wallpapers of ``benchmarks.photos`` (never
trained or tuned on): "Grey" (a building's facade, 512x320) and "summer_1am" (a lake at dusk,
512x320). It writes the page, prints each level's numbers, and saves the screenshot beside the page
(``.png``): the first photo at its second level shown, zoomed 2x. The browser is Debian's chromium
with chromium-driver, driven by Selenium (``scripts/setup.sh --browser`` installs them).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import codec.compare

PHOTOS = ("Grey", "summer_1am")
DOCS = Path(__file__).parents[1] / "docs"


def headless_chromium(width: int = 1600, height: int = 1300):
    """A Selenium driver of Debian's headless chromium, one CSS pixel per screen pixel."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver = shutil.which("chromedriver")
    if not (driver and shutil.which("chromium")):
        raise RuntimeError("chromium and chromium-driver are missing: scripts/setup.sh --browser")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", f"--window-size={width},{height}",
                     "--force-device-scale-factor=1", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


def screenshot(page: Path, out: Path) -> None:
    """``page`` as Chromium shows it with the first photo's second level, zoomed 2x."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = headless_chromium(height=1150)
    try:
        browser.get(page.resolve().as_uri())
        section = browser.find_element(By.CSS_SELECTOR, "section.image")
        section.find_elements(By.CSS_SELECTOR, "button.level")[1].click()
        section.find_element(By.CSS_SELECTOR, 'button.zoom[data-zoom="2"]').click()
        WebDriverWait(browser, 20).until(lambda _: section.get_attribute("data-ready") == "1")
        browser.save_screenshot(str(out))
    finally:
        browser.quit()


def main(argv=None) -> None:
    from benchmarks import photos

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS / "compare.html")
    parser.add_argument("--qualities", default="4,7,10", help="the levels shown (default 4,7,10)")
    args = parser.parse_args(argv)
    _, held_out = photos.wallpapers()
    images = {f"{name} (held out)": held_out[name] for name in PHOTOS}
    qualities = tuple(int(q) for q in args.qualities.split(","))
    results = codec.compare.measure(images, qualities=qualities)
    for r in results:
        for level in r["levels"]:
            cells = [f"{k} {p['setting']}: {p['bytes']:,} B {p['psnr']:.2f} dB"
                     for k, p in level["panels"].items()]  # fmt: skip
            print(f"{r['name']}, quality {level['quality']}: " + "; ".join(cells))
    args.out.write_bytes(codec.compare.page(results))
    screenshot(args.out, args.out.with_suffix(".png"))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes) and its screenshot")


if __name__ == "__main__":
    main()
