"""``make search``: search the index the last ``make up`` / ``make demo`` left.

SQLite needs nothing running.  With ``INDEX_BACKEND=opensearch`` and no node answering at
``OPENSEARCH_URL``, the local node is started on the data ``make demo``/``make up`` left in
``.run/opensearch``, queried, and stopped again.
"""

from __future__ import annotations

import os
import sys

from devstack.stack import RUN_DIR, read_env_file, start_opensearch


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for key, value in read_env_file(RUN_DIR / "stack.env").items():
        os.environ.setdefault(key, value)
    node = None
    if os.environ.get("INDEX_BACKEND") == "opensearch":
        from devstack.opensearch import cluster_health

        url = os.environ.get("OPENSEARCH_URL", "")
        if not url or cluster_health(url) is None:
            (RUN_DIR / "logs").mkdir(parents=True, exist_ok=True)
            node = start_opensearch(RUN_DIR, RUN_DIR / "logs")
            os.environ["OPENSEARCH_URL"] = node.url
    try:
        from pipeline.search import main as search

        return search(args)
    finally:
        if node is not None:
            node.stop()


if __name__ == "__main__":
    sys.exit(main())
