"""Opens a built site in headless Chromium, takes screenshots of the home page and of a
notebook page, and checks that they render: text on the page, a screenshot that is not
blank, every image loaded, and the notebook's plots drawn.

    python docs/browser_check.py [site] [--notebook 01_quickstart] [--out build/screenshots]

Needs Debian's `chromium` (apt-get install chromium) and `pip install playwright`, which
drives that browser (no browser is downloaded). Exits 1 with one line per problem. Requests
that leave the machine (none are expected) are listed and blocked.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
# As the machine's own probe starts it: no sandbox as root, no background connections.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMAGES = """() => Array.from(document.images).map(i => ({
    src: i.src.slice(0, 60), complete: i.complete, width: i.naturalWidth}))"""


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    """The site on a free localhost port, served from a thread."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def blank(screenshot: Path) -> bool:
    """A screenshot of (almost) one colour."""
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    return float(pixels.std()) < 5.0


def check_page(page, url: str, screenshot: Path, plots: bool) -> list[str]:
    """Load `url`, save a full-page screenshot, and list what did not render."""
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshot), full_page=True)
    problems = []
    text = page.evaluate("() => document.body.innerText.length")
    if text < 200:
        problems.append(f"{url}: only {text} characters of text")
    if blank(screenshot):
        problems.append(f"{screenshot}: blank")
    images = page.evaluate(IMAGES)
    problems += [f"{url}: image not loaded: {i['src']}" for i in images if not i["width"]]
    drawn = [i for i in images if i["src"].startswith("data:image/png") and i["width"] > 100]
    if plots and not drawn:
        problems.append(f"{url}: no plot drawn")
    print(f"{url}: {text} characters, {len(images)} images ({len(drawn)} plots) -> {screenshot}")
    return problems


def main() -> int:
    from playwright.sync_api import sync_playwright

    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("site", type=Path, nargs="?", default=Path("site"))
    args.add_argument("--notebook", default="01_quickstart")
    args.add_argument("--out", type=Path, default=Path("build/screenshots"))
    options = args.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    server = serve(options.site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def local_only(route) -> None:
            if route.request.url.startswith(base) or route.request.url.startswith("data:"):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", local_only)
        problems = check_page(page, f"{base}/", options.out / "home.png", plots=False)
        notebook = f"{base}/notebooks/{options.notebook}/"
        problems += check_page(page, notebook, options.out / f"{options.notebook}.png", plots=True)
        browser.close()
    server.shutdown()
    problems += [f"request leaving the machine: {url}" for url in sorted(set(outside))]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
