"""The docs site (``make docs``) builds in strict mode, every page is there, and no link of the built
HTML leads to a missing file or anchor."""

from __future__ import annotations

import html
import os
import posixpath
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["index.html", "tutorial/index.html", "guide/index.html", "reference/index.html",
         "faq/index.html", "benchmarks/index.html", "samples/index.html", "samples/chat/index.html",
         *(f"{page.stem}/index.html" for page in (ROOT / "docs").glob("howto-*.md"))]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The site, built once for this module with ``mkdocs build --strict`` (a warning fails it)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(out)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "WARNING" not in done.stderr, done.stderr[-5000:]
    yield out


class Links(HTMLParser):
    """The ids of a page and the targets of its links and images."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            elif name in ("href", "src") and value is not None:
                self.targets.append(value)


def parse(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def test_every_page_is_built(site: Path) -> None:
    for page in PAGES:
        assert (site / page).is_file(), page
    samples = {path.stem for path in (ROOT / "samples").rglob("*.py")} - {"chat"}
    for stem in samples:
        assert (site / "samples" / stem / "index.html").is_file(), f"no page for the sample {stem}"


def test_relative_links_lead_to_files_and_anchors_that_exist(site: Path) -> None:
    parsed = {page: parse(page) for page in site.rglob("*.html")}
    checked = 0
    for page, links in parsed.items():
        for target in links.targets:
            parts = urlsplit(target)
            if parts.scheme or target.startswith("//"):
                continue  # another site
            path = unquote(parts.path)
            base = site if path.startswith("/") else page.parent  # 404.html links from the root
            linked = page if not path else Path(posixpath.normpath(str(base / path.lstrip("/"))))
            if linked.is_dir() or path.endswith("/"):
                linked = linked / "index.html"
            assert linked.is_file(), f"{page.relative_to(site)}: {target} leads to a missing file"
            if parts.fragment and linked.suffix == ".html":
                ids = parsed[linked].ids if linked in parsed else parse(linked).ids
                assert unquote(parts.fragment) in ids, f"{page.relative_to(site)}: {target}: no such anchor"
            checked += 1
    assert checked > 500


def test_links_between_pages_are_the_sites_not_the_repositorys(site: Path) -> None:
    """The Markdown's links to README.md, samples/ or RESULTS.md become links to their pages."""
    for page in site.rglob("*.html"):
        for target in parse(page).targets:
            path = urlsplit(target).path
            assert not re.search(r"\.(md|py)$", path), f"{page.relative_to(site)}: {target}"


def test_samples_pages_show_the_whole_program(site: Path) -> None:
    shown = html.unescape(re.sub(r"<[^>]+>", "", (site / "samples" / "broadcast" / "index.html").read_text()))
    for line in (ROOT / "samples" / "broadcast.py").read_text().splitlines():
        assert line.strip() in shown, line


def test_benchmarks_page_has_the_tables_and_the_chart_made_from_them(site: Path) -> None:
    text = (site / "benchmarks" / "index.html").read_text()
    assert "Servers, asyncio loop" in text and "<table>" in text
    targets = parse(site / "benchmarks" / "index.html").targets
    images = [target for target in targets if target.endswith(".png")]
    assert images, "the chart is on the page"
    chart = site / "benchmarks" / images[0]
    assert chart.resolve().read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_chart_reads_the_ratios_of_the_results_tables() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import bench_chart
    finally:
        sys.path.remove(str(ROOT / "docs"))
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    columns, rows = bench_chart.tables(results)["Servers, asyncio loop"]
    assert columns[0].startswith("rtt") and "websockets" in rows
    assert bench_chart.ratio("64,051 (1.87×)", "wsevents") == 1.87
    assert bench_chart.ratio("34,230", "websockets") == 1.0
    with pytest.raises(ValueError, match="no ratio"):
        bench_chart.ratio("34,230", "wsevents")
    with pytest.raises(ValueError, match="no table"):
        bench_chart.render("# no tables\n")
