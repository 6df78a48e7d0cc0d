"""The whole pipeline with INDEX_BACKEND=opensearch: a real node, then ``make search``'s path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devstack.stack import ROOT, Stack
from tests.support import unavailable

pytestmark = [pytest.mark.stack, pytest.mark.opensearch]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("os-stack")
    stack = Stack(run_dir=run_dir, env={"INDEX_BACKEND": "opensearch",
                                        "BRIDGE_WAIT_TIME_SECONDS": "1"})
    try:
        stack.start()
    except Exception as exc:  # no Java/Maven, node or moto did not start
        unavailable(f"cannot start the stack with OpenSearch: {exc}")
    try:
        yield stack
    finally:
        stack.stop()


def search(stack: Stack, *args: str) -> dict[str, object]:
    env = {**os.environ, "INDEX_BACKEND": "opensearch",
           "OPENSEARCH_URL": stack.env["OPENSEARCH_URL"]}
    out = subprocess.run([sys.executable, "-m", "pipeline.search", "--json", *args], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_japanese_document_found_by_word_and_folder(stack: Stack) -> None:
    import time

    import boto3

    s3 = boto3.client("s3", endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    key = "議事録/2024 年度/定例 会議.txt"
    s3.put_object(Bucket="filesearch-uploads", Key=key,
                  Body="本日の定例会議では来期の予算について協議した。".encode())
    s3.put_object(Bucket="filesearch-uploads", Key="other/readme.txt", Body=b"unrelated")

    deadline = time.monotonic() + 60
    hits: list[dict[str, object]] = []
    while time.monotonic() < deadline and not hits:
        hits = search(stack, "予算")["hits"]  # type: ignore[assignment]
        time.sleep(0.5)

    assert [h["key"] for h in hits] == [key]
    assert "予算" in str(hits[0]["snippet"])
    in_folder = search(stack, "--folder", "議事録/2024 年度")
    assert [h["key"] for h in in_folder["hits"]] == [key]  # type: ignore[attr-defined]
    assert search(stack, "--folder", "other")["total"] == 1


def test_folder_filter_excludes_other_folders(stack: Stack) -> None:
    assert search(stack, "予算", "--folder", "other")["total"] == 0
