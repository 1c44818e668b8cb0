"""Render a vsearch HTML report in a real browser (headless Chromium) and check it.

Takes a screenshot and checks, in the rendered page, that every image loaded
(decoded, non-zero size), that nothing is wider than the window (no horizontal
overflow), and that every plot has its axes, threshold line and shaded span:

    python -m tools.render_report report.html [--width 1280] [--screenshot report.png]

Prints one JSON object; exits 1 when a check fails, 3 when no Chromium is found.
Chromium comes from Debian's packages (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Run in the page once it has loaded; the verdict is written into the DOM, which
# Chromium then dumps.
_CHECK = """
<script>
window.addEventListener('load', () => {
  const width = window.innerWidth;
  const images = [...document.images];
  const broken = images.filter(i => !i.complete || i.naturalWidth === 0).length;
  const wide = [...document.body.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > width + 0.5).map(e => e.tagName + '.' + e.className);
  const plots = [...document.querySelectorAll('svg.plot')];
  const complete = plots.filter(p => p.querySelector('line.threshold') && p.querySelector('rect.span')
    && [...p.querySelectorAll('text')].some(t => t.textContent.includes('clip time'))
    && [...p.querySelectorAll('text')].some(t => t.textContent.includes('score'))).length;
  const out = document.createElement('pre');
  out.id = 'vsearch-render-check';
  out.textContent = JSON.stringify({images: images.length, broken_images: broken,
    page_width: document.documentElement.scrollWidth, window_width: width,
    overflowing: wide.slice(0, 5), plots: plots.length, complete_plots: complete});
  document.body.appendChild(out);
});
</script>
"""


def find_browser() -> str | None:
    """Path of a Chromium-family browser, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _run(browser: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=10000", *args], capture_output=True, text=True, timeout=120)


def render(report: Path, *, width: int = 1280, height: int = 1600, screenshot: Path | None = None,
           browser: str | None = None) -> dict:
    """Render ``report`` at ``width`` pixels; return the checks (and write ``screenshot``)."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium)")
    page = report.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="vsearch-render-") as tmp:
        probe = Path(tmp) / "page.html"
        probe.write_text(page.replace("</body>", _CHECK + "</body>"), encoding="utf-8")
        dumped = _run(browser, f"--window-size={width},{height}", "--dump-dom", probe.as_uri())
        if screenshot is not None:
            _run(browser, f"--window-size={width},{height}", f"--screenshot={screenshot.resolve()}", report.resolve().as_uri())
    found = re.search(r'<pre id="vsearch-render-check">(.*?)</pre>', dumped.stdout, re.S)
    if not found:
        raise RuntimeError(f"the browser gave no verdict: {dumped.stderr.strip()[-300:]}")
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    result["ok"] = (result["broken_images"] == 0 and not result["overflowing"]
                    and result["page_width"] <= result["window_width"] and result["complete_plots"] == result["plots"])
    if screenshot is not None:
        result["screenshot"] = str(screenshot) if screenshot.exists() else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1600)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    if find_browser() is None:
        print("no Chromium found (apt-get install chromium)", file=sys.stderr)
        sys.exit(3)
    result = render(args.report, width=args.width, height=args.height, screenshot=args.screenshot)
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
