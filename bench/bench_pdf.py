"""Benchmark (not a test): pages per second of our PDF path against bare PyMuPDF.

Three ways over the same files, side by side in one run: bare PyMuPDF (``page.get_text()`` in a
loop), ``extractors.extract_file`` and ``extractors.sandbox.extract_isolated`` (fork + rlimits +
JSON over a pipe).  Files: the corpus PDFs (``SAMPLE_FILES_DIR``) and a generated 500-page PDF.
Each figure is the best of ``--repeat`` runs.

    cd /work/main && .venv/bin/python -m bench.bench_pdf [--repeat 3] [--pages 500]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pymupdf

from extractors import Limits, extract_file
from extractors.sandbox import extract_isolated
from pipeline.errors import ContentError

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("SAMPLE_FILES_DIR", REPO.parent / "shared/corpus/sample-files"))
LIMITS = Limits()
#: a paragraph of ordinary prose for the generated pages
PROSE = (
    "The quarterly report covers sales in the Tokyo and Osaka regions. 売上は前年同期比で増加した。"
    " Revenue grew by twelve percent while costs stayed flat."
)


#: lines of text on each generated page
LINES_PER_PAGE = 50


def corpus_pdfs() -> list[Path]:
    """Readable, unencrypted PDFs of the corpus (``files.json``), those present on disk."""
    index = CORPUS / "files.json"
    if not index.exists():
        return []
    entries = json.loads(index.read_text(encoding="utf-8"))["data"]
    paths = [CORPUS / e["path"] for e in entries if not e["encrypted"]]
    return [path for path in paths if path.exists()]


def generated_pdf(folder: Path, pages: int) -> Path:
    """A ``pages``-page text PDF (``LINES_PER_PAGE`` lines per page, Latin and Japanese)."""
    path = folder / f"generated-{pages}-pages.pdf"
    doc = pymupdf.open()
    for number in range(pages):
        page = doc.new_page()
        lines = [f"Page {number + 1}"] + [PROSE[i % 40 :][:100] for i in range(LINES_PER_PAGE)]
        for row, line in enumerate(lines):
            page.insert_text((36, 40 + 14 * row), line, fontname="japan", fontsize=8)
    doc.save(path)
    doc.close()
    return path


def bare(path: Path) -> int:
    """PyMuPDF alone: open, ``get_text()`` every page, close; returns the page count."""
    with pymupdf.open(path) as doc:
        for page in doc:
            page.get_text()
        return int(doc.page_count)


def ours(path: Path) -> int:
    return extract_file(path, filename=path.name, limits=LIMITS).pages or 0


def isolated(path: Path) -> int:
    return extract_isolated(path, filename=path.name, limits=LIMITS).pages or 0


def best_seconds(run: Callable[[Path], int], path: Path, repeat: int) -> tuple[float, int]:
    """Fastest of ``repeat`` runs and the pages it reported."""
    best, pages = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        pages = run(path)
        best = min(best, time.perf_counter() - started)
    return best, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pages", type=int, default=500)
    args = parser.parse_args()
    pymupdf.TOOLS.mupdf_display_errors(False)
    with tempfile.TemporaryDirectory() as folder:
        files = [*corpus_pdfs(), generated_pdf(Path(folder), args.pages)]
        header = (f"{'file':<42} {'pages':>5} {'bare p/s':>9} {'extract p/s':>11} {'ratio':>6} "
                  f"{'isolated p/s':>12} {'ratio':>6}")  # fmt: skip
        print(header)
        print("-" * len(header))
        totals = [0.0, 0.0, 0.0]
        total_pages = 0
        for path in files:
            try:
                (t_bare, pages), (t_ours, _), (t_iso, _) = (
                    best_seconds(run, path, args.repeat) for run in (bare, ours, isolated)
                )
            except ContentError as exc:
                print(f"{path.name[:42]:<42} skipped: {exc.reason}")
                continue
            for index, seconds in enumerate((t_bare, t_ours, t_iso)):
                totals[index] += seconds
            total_pages += pages
            print(_row(path.name, pages, t_bare, t_ours, t_iso))
        print("-" * len(header))
        print(_row("all files", total_pages, *totals))


def _row(name: str, pages: int, t_bare: float, t_ours: float, t_iso: float) -> str:
    rates = [pages / seconds if seconds else float("inf") for seconds in (t_bare, t_ours, t_iso)]
    bare_rate, ours_rate, isolated_rate = rates
    return (
        f"{name[:42]:<42} {pages:>5} {bare_rate:>9.0f} {ours_rate:>11.0f} "
        f"{ours_rate / bare_rate:>6.2f} {isolated_rate:>12.0f} {isolated_rate / bare_rate:>6.2f}"
    )


if __name__ == "__main__":
    main()
