"""PNG screenshots of the course website with headless Chromium (``make screenshots``, after ``make book``):

    python tools/screenshots.py                     # build/book -> build/screenshots/*.png
    python tools/screenshots.py --book build/book-teacher --out build/screenshots-teacher

The landing page (the syllabus) and two notebook pages (opened at a section: notebook 01's exercises, notebook
06's stored comparison), each at a desktop width and the height given below, with time for MathJax to typeset
(Chromium's virtual time budget). Chromium is the Debian package ``chromium`` (``apt-get install chromium``) or any
``chromium`` / ``google-chrome`` on the PATH; nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = (  # (page#section it opens at, png name, window height in px)
    ("index.html", "landing.png", 2400),
    ("notebooks/01_flow_matching_between_distributions.html#exercises", "notebook01_exercises.png", 2400),
    ("notebooks/06_crossflow_vs_standard_flow_matching.html#side-by-side-on-shapesworld-stored",
     "notebook06_comparison.png", 2400),
)
WIDTH = 1400


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return name
    raise SystemExit("no Chromium found: install the Debian package `chromium` (apt-get install chromium)")


def shoot(url: str, out: Path, height: int, browser: str) -> None:
    """One screenshot of ``url`` (a ``#section`` in it is scrolled to: the page is shown in a frame, since a
    headless window does not scroll to a fragment by itself)."""
    with tempfile.TemporaryDirectory(prefix="crossflow-chromium-") as tmp:
        frame = Path(tmp) / "frame.html"
        frame.write_text(f'<!doctype html><html><body style="margin:0"><iframe src="{url}" '
                         f'style="width:{WIDTH}px;height:{height}px;border:0"></iframe></body></html>')
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--no-default-browser-check", "--disable-extensions", "--allow-file-access-from-files",
               f"--user-data-dir={Path(tmp) / 'profile'}", f"--window-size={WIDTH},{height}",
               "--virtual-time-budget=15000", f"--screenshot={out}", frame.as_uri()]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    if not out.exists():
        raise SystemExit(f"Chromium wrote no screenshot for {url}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--book", type=Path, default=ROOT / "build" / "book")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "screenshots")
    args = ap.parse_args()
    browser = chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    for page, name, height in PAGES:
        file, _, anchor = page.partition("#")
        path = (args.book / file).resolve()
        if not path.exists():
            raise SystemExit(f"{path} does not exist: run `make book` first")
        shoot(path.as_uri() + (f"#{anchor}" if anchor else ""), args.out / name, height, browser)
        print(f"{page} -> {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
