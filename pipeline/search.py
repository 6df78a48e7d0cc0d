"""Search the index: ``python -m pipeline.search [QUERY] [--type pdf] [--folder reports/]``.

Terms are ANDed; ``"quoted phrases"`` stay whole.  Prints one hit per block: bucket/key, title,
outcome and a snippet; ``--json`` prints the result as JSON.  Needs no AWS endpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from index import SearchQuery, SearchResult, open_backend
from pipeline.settings import ConfigError, get_settings


def render(result: SearchResult) -> str:
    lines = [f"{result.total} hit(s)"]
    for hit in result.hits:
        title = f"  title: {hit.title}" if hit.title else ""
        lines.append(f"\ns3://{hit.bucket}/{hit.key}  [{hit.content_type}, {hit.outcome}]")
        if title:
            lines.append(title)
        if hit.snippet:
            lines.append(f"  {hit.snippet}")
    if result.folders:
        lines.append("\nfolders: " + ", ".join(f"{f or '/'} ({n})"
                                               for f, n in result.folders.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("query", nargs="*", help="free text (terms ANDed)")
    parser.add_argument("--type", dest="file_type", help="media type or extension, e.g. pdf")
    parser.add_argument("--folder", help="folder prefix, e.g. 'reports/2024/'")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        backend = open_backend(get_settings())
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    result = backend.search(SearchQuery(text=" ".join(args.query), file_type=args.file_type,
                                        folder=args.folder, limit=args.limit))
    if args.json:
        print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
