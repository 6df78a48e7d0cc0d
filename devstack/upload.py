"""``make upload FILES=dir``: upload a folder into the running stack, keys = relative paths."""

from __future__ import annotations

import sys
from pathlib import Path

from devstack.demo import iter_files, upload
from pipeline.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m devstack.upload DIR", file=sys.stderr)
        return 2
    root = Path(args[0]).resolve()
    files = iter_files(root)
    upload(files, get_settings().upload_bucket)
    for _, key in files:
        print(f"uploaded s3://{get_settings().upload_bucket}/{key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
