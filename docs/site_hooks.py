"""MkDocs hooks of the docs site (mkdocs.yml): the pages that live outside docs/.

The README becomes the home page, each sample a page with its source, benchmarks/RESULTS.md the
benchmarks page with a chart drawn from its tables (docs/bench_chart.py). The Markdown keeps the
links that work in the repository (tests/test_readme.py checks them); this module maps each link
to a file that has a page to the link between the pages, so that one text serves both.
"""

from __future__ import annotations

import ast
import posixpath
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

CHAT = "samples/chat/chat.py"  # shown on the page of samples/chat/README.md
CHART = "benchmarks.png"
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def sample_programs() -> dict[str, str]:
    """Every program of samples/ but the chat (which has a README of its own) -> its page."""
    programs = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "samples").rglob("*.py"))
    return {program: f"samples/{Path(program).stem}.md" for program in programs if program != CHAT}


def generated_pages() -> dict[str, tuple[str, str]]:
    """Page -> (the repository file its links are relative to, its Markdown)."""
    pages = {
        "index.md": ("README.md", read("README.md")),
        "samples/index.md": ("samples/README.md", samples_index()),
        "samples/chat.md": ("samples/chat/README.md", read("samples/chat/README.md")
                            + "\n## The program\n\n" + source_block(CHAT)),
        "benchmarks.md": ("benchmarks/RESULTS.md", benchmarks_page()),
    }
    for program, page in sample_programs().items():
        pages[page] = (program, sample_page(program))
    return pages


def samples_index() -> str:
    """samples/README.md, its table's names of programs made links to their pages."""
    text = read("samples/README.md")
    for program, page in {CHAT: "samples/chat.md", **sample_programs()}.items():
        name = program.removeprefix("samples/")
        text = text.replace(f"| `{name}` |", f"| [`{name}`]({posixpath.relpath(page, 'samples')}) |")
    return text


def read(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def source_block(program: str) -> str:
    return f"```python title=\"{program}\"\n{read(program).rstrip()}\n```\n"


def sample_page(program: str) -> str:
    """A program's docstring as the text, then the whole program."""
    docstring = ast.get_docstring(ast.parse(read(program))) or ""
    summary, _, rest = docstring.partition("\n")
    return (f"# {program}\n\n{summary}\n\n```sh\n{rest.strip()}\n```\n\n"
            f"`tests/test_samples.py` runs it and checks what it prints.\n\n{source_block(program)}")


def benchmarks_page() -> str:
    """RESULTS.md with the chart of its server tables under its title."""
    results = read("benchmarks/RESULTS.md")
    # RESULTS.md's own chart (benchmarks/RESULTS.png, drawn by run.py) has no page here: this one replaces it.
    results = re.sub(r"^!\[[^\]]*\]\(RESULTS\.png\)\n", "", results, flags=re.M)
    title, _, rest = results.partition("\n")
    chart = (f"\n\nThe tables below as a chart (drawn from them when this site is built, by "
             f"`docs/bench_chart.py`): each bar is a contender's figure divided by websockets' on the "
             f"same scenario, inverted for idle memory, so that a bar right of 1 is better.\n\n"
             f"![Ratios to websockets of every server, asyncio and uvloop]({CHART})\n")
    return title + chart + rest


def site_pages() -> dict[str, str]:
    """Repository path -> page, for every file that has a page (what links are mapped through)."""
    pages = {f"docs/{path.name}": path.name for path in DOCS.glob("*.md")}
    pages.update({source: page for page, (source, _) in generated_pages().items()})
    pages.update(sample_programs())
    pages.update({CHAT: "samples/chat.md", "samples": "samples/index.md", "samples/chat": "samples/chat.md"})
    return pages


def rewrite_links(markdown: str, source: str, page: str) -> str:
    """Each link of ``markdown`` (written relative to the repository file ``source``) that leads to
    a file with a page now leads to that page, relative to ``page``; code blocks are left alone."""
    pages = site_pages()

    def one(match: re.Match[str]) -> str:
        target = match[2]
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match[0]
        path, hash_, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), path)).rstrip("/")
        if resolved not in pages:  # left as it is: MkDocs reports it if it leads nowhere
            return match[0]
        linked = posixpath.relpath(pages[resolved], posixpath.dirname(page) or ".")
        return f"{match[1]}{linked}{hash_}{anchor}{match[3]}"

    parts = []
    end = 0
    for fence in FENCE.finditer(markdown):
        parts += [LINK.sub(one, markdown[end:fence.start()]), fence[0]]
        end = fence.end()
    parts.append(LINK.sub(one, markdown[end:]))
    return "".join(parts)


def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    """The nav's "Samples" section lists every sample (a new program gets its page by itself), and a
    page of docs/ that mkdocs.yml does not place yet goes before the API reference (so that a new
    page is never unreachable; give it its place in mkdocs.yml)."""
    nav = config.nav or []
    for item in nav:
        if isinstance(item, dict) and "Samples" in item:
            item["Samples"] = ["samples/index.md", "samples/chat.md", *sample_programs().values()]
    placed = set(nav_files(nav))
    missing = sorted(path.name for path in DOCS.glob("*.md") if path.name not in placed)
    at = next((i for i, item in enumerate(nav) if item == {"API reference": "reference.md"}), len(nav))
    nav[at:at] = missing
    return config


def nav_files(nav: Any) -> Iterator[str]:
    """Every page that a part of the nav names."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from nav_files(value)
    elif isinstance(nav, list):
        for item in nav:
            yield from nav_files(item)


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    for page, (_, markdown) in generated_pages().items():
        files.append(File.generated(config, page, content=markdown))
    sys.path.insert(0, str(DOCS))
    try:
        import bench_chart
    finally:
        sys.path.remove(str(DOCS))
    files.append(File.generated(config, CHART, content=bench_chart.render(read("benchmarks/RESULTS.md"))))
    return files


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    uri = page.file.src_uri
    sources = {page_: source for page_, (source, _) in generated_pages().items()}
    return rewrite_links(markdown, sources.get(uri, f"docs/{uri}"), uri)


def on_serve(server: Any, config: MkDocsConfig, builder: Any, **_: Any) -> Any:
    """``mkdocs serve`` rebuilds when a file the generated pages come from changes."""
    for path in ("README.md", "samples", "benchmarks/RESULTS.md"):
        server.watch(str(ROOT / path))
    return server
