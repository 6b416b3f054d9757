"""The README's pictures, made, not hand-taken: each stored scenario's finished results in headless
Chromium, in English and Chinese, cropped to the chart that shows the finding.

    python -m benchmarks.screenshots               # every picture into docs/img/ (about 2 minutes on 2 cores)
    python -m benchmarks.screenshots --only leak   # one (both languages)

It starts the app on a free localhost port (``benchmarks.server``: headless, no file
watcher), opens each shot's link (a guided-tour scenario shows its stored results at once, see
``core.precompute``), waits for the script to finish and the charts to draw, and takes the shot's
charts (by their order on the page) with their captions as one clip. The PNGs are reduced to a 256-colour
palette (Pillow), which keeps text sharp at a fraction of the size. Re-run it whenever a page
changes; ``tests/test_docs.py`` fails if a document links a picture that is not there.
Needs Debian's Chromium (``apt-get install chromium fonts-noto-cjk``), as the browser tests do.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from benchmarks.server import ERRORS, free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
WIDTH = 1280  # the page as on a laptop; GitHub shows a picture up to about 900 px wide, text still readable
LANGS = ("en", "zh")


@dataclass(frozen=True)
class Shot:
    name: str  # docs/img/<name>.<lang>.png
    path: str  # the page and its query, e.g. "train_vs_inference?scenario=reads_future"
    charts: tuple[int, ...]  # which of the page's charts (in page order) the picture holds
    captions: bool = True  # include the caption under the last chart


SHOTS = [
    Shot("hero", "train_vs_inference?scenario=reads_future", (0,)),
    Shot("comparability", "?", (0,)),
    Shot("positions", "?", (1,)),
    Shot("leak", "train_vs_inference?scenario=reads_future", (4,)),
    Shot("deploy", "train_vs_inference?scenario=reads_future", (6,)),
    Shot("line_in_batches", "train_vs_inference?scenario=line_in_batches", (3,)),
    Shot("fixes_gradient", "fixes?scenario=can_bn_be_saved", (2, 3)),
    Shot("shrink_batch", "batch_size?scenario=shrink_batch", (1,)),
]


def _link(server: str, shot: Shot, lang: str) -> str:
    path, _, query = shot.path.partition("?")
    params = "&".join(p for p in (query, "lang=zh" if lang == "zh" else "") if p)
    return f"{server}/{path}" + (f"?{params}" if params else "")


def take(page, server: str, shot: Shot, lang: str) -> Path:
    page.goto(_link(server, shot, lang))
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=120_000)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    charts.nth(max(shot.charts)).wait_for(timeout=60_000)
    page.wait_for_timeout(1500)  # vega finishes its layout
    if page.locator(ERRORS).count():
        raise RuntimeError(f"{shot.name} ({lang}): the page shows an error")
    boxes = [charts.nth(i).bounding_box() for i in shot.charts]
    if shot.captions:  # the caption row that follows the last chart
        last = charts.nth(max(shot.charts))
        caption = last.locator("xpath=following::*[@data-testid='stCaptionContainer'][1]")
        boxes.append(caption.bounding_box())
    left = min(b["x"] for b in boxes) - 8
    top = min(b["y"] for b in boxes) - 8
    right = max(b["x"] + b["width"] for b in boxes) + 8
    bottom = max(b["y"] + b["height"] for b in boxes) + 8
    path = OUT / f"{shot.name}.{lang}.png"
    page.screenshot(path=path, clip={"x": left, "y": top, "width": right - left, "height": bottom - top})
    optimise(path)
    return path


QUEUE = "queue"  # the live page of a visitor whose job waits for the server's one slot (BNLN_MAX_RUNS=1)


def take_queue(browser, server: str, lang: str) -> Path:
    """A second visitor's live run waiting in the queue behind a first visitor's long run: the Stop
    button and the progress line saying its place and wait."""
    first = browser.new_page(viewport={"width": WIDTH, "height": 900})
    first.goto(f"{server}/live?steps=3000&seed=7001")
    first.wait_for_selector('[data-testid="stBaseButton-primaryFormSubmit"]', timeout=120_000)
    first.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    first.wait_for_function(
        "document.querySelector('[data-testid=\"stProgress\"]')?.innerText.includes('step')", timeout=120_000
    )
    second = browser.new_page(viewport={"width": WIDTH, "height": 2000})
    second.goto(f"{server}/live?seed=7002" + ("&lang=zh" if lang == "zh" else ""))
    second.wait_for_selector('[data-testid="stBaseButton-primaryFormSubmit"]', timeout=120_000)
    second.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    bar = second.locator('[data-testid="stProgress"]')
    bar.wait_for(timeout=60_000)
    second.wait_for_function(
        "/ 1 .* 1 /.test(document.querySelector('[data-testid=\"stProgress\"]')?.innerText || '')", timeout=60_000
    )
    if second.locator(ERRORS).count():
        raise RuntimeError(f"queue ({lang}): the page shows an error")
    stop = second.locator(".st-key-live-stop")
    boxes = [stop.bounding_box(), bar.bounding_box()]
    left, top = min(b["x"] for b in boxes) - 8, min(b["y"] for b in boxes) - 8
    right = max(b["x"] + b["width"] for b in boxes) + 8
    bottom = max(b["y"] + b["height"] for b in boxes) + 8
    path = OUT / f"{QUEUE}.{lang}.png"
    second.screenshot(path=path, clip={"x": left, "y": top, "width": right - left, "height": bottom - top})
    optimise(path)
    stop.locator("button").first.click()  # leaves the queue
    first.close()  # its job stops once nobody watches it
    second.close()
    return path


def optimise(path: Path):
    """A 256-colour palette PNG: charts have few colours, so text and lines stay sharp."""
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma list of {', '.join(s.name for s in SHOTS)} (default: all)")
    a = parser.parse_args(argv)
    names = [s.name for s in SHOTS] + [QUEUE]
    wanted = a.only.split(",") if a.only else names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        parser.exit(2, f"error: --only: unknown picture {unknown[0]!r}; known: {', '.join(names)}\n")
    if not Path(CHROMIUM).exists():
        parser.exit(2, f"error: no Chromium at {CHROMIUM}: apt-get install -y chromium fonts-noto-cjk\n")
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {"BNLN_MAX_RUNS": "1"}  # the queue picture: one slot
    proc = start_server(port, ROOT / "artifacts" / "streamlit_server_screenshots.log", env)
    started = time.perf_counter()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            # Tall enough that every chart of a page is laid out at once (the main area scrolls inside the app).
            page = browser.new_page(viewport={"width": WIDTH, "height": 7000}, device_scale_factor=1)
            for shot in (s for s in SHOTS if s.name in wanted):
                for lang in LANGS:
                    path = take(page, f"http://127.0.0.1:{port}", shot, lang)
                    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB", file=sys.stderr)
            for lang in LANGS if QUEUE in wanted else ():
                path = take_queue(browser, f"http://127.0.0.1:{port}", lang)
                print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB", file=sys.stderr)
            browser.close()
    finally:
        stop_server(proc)
    total = sum(f.stat().st_size for f in OUT.glob("*.png"))
    print(f"{len(list(OUT.glob('*.png')))} pictures, {total / 1e6:.2f} MB, {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
