"""The whole system over the wire: moto server + bridge + Celery worker subprocesses + index.

Files go in through S3 exactly as a client uploads them; outcomes are read from the index and
the dead-letter queue, as an operator would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import ROOT, Stack
from index.base import Document
from index.sqlite import SqliteIndex
from pipeline.objects import ObjectRef, document_id
from tests.support import unavailable

pytestmark = pytest.mark.stack

#: seconds to wait for one outcome
OUTCOME_TIMEOUT = 60.0
#: a versioned bucket without notifications: the ordering tests write its events by hand,
#: with real-shaped sequencers (the local endpoint omits them)
ORDERING = "filesearch-ordering"


class Running:
    """A running stack plus the clients a test needs."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.env = stack.env
        import boto3

        self.s3 = boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"],
                               region_name="us-east-1", aws_access_key_id="testing",
                               aws_secret_access_key="testing")
        self.sqs = boto3.client("sqs", endpoint_url=self.env["AWS_ENDPOINT_URL"],
                                region_name="us-east-1", aws_access_key_id="testing",
                                aws_secret_access_key="testing")
        self.index = SqliteIndex(self.env["SQLITE_PATH"])
        self.bucket = "filesearch-uploads"

    def wait_for(self, check: Callable[[], Any], timeout: float = OUTCOME_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.25)
        logs = {p.name: p.read_text(errors="replace")[-3000:]
                for p in (self.stack.logs).glob("*.log")}
        pytest.fail(f"timed out after {timeout}s; log tails: {json.dumps(logs)[:6000]}")

    def doc(self, key: str) -> Document | None:
        return self.index.get(document_id(self.bucket, key))

    def queue_url(self, name: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def dead_letters(self) -> list[dict[str, Any]]:
        url = self.queue_url("filesearch-dead-letter")
        resp = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                        VisibilityTimeout=0, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in resp.get("Messages", [])]

    def search(self, *args: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "pipeline.search", "--json", *args],
                             cwd=ROOT, env={**os.environ, "SQLITE_PATH": self.env["SQLITE_PATH"]},
                             capture_output=True, text=True, check=True)
        result: dict[str, Any] = json.loads(out.stdout)
        return result


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    run_dir = tmp_path_factory.mktemp("stack")
    stack = Stack(run_dir=run_dir, env={"BRIDGE_WAIT_TIME_SECONDS": "1", "MAX_RETRIES": "2",
                                        "RETRY_BACKOFF_BASE": "1", "RETRY_BACKOFF_MAX": "2",
                                        "ALLOWED_BUCKETS": f"filesearch-uploads,{ORDERING}"})
    try:
        stack.start()
    except (OSError, RuntimeError) as exc:
        unavailable(f"cannot start the local stack: {exc}")
    try:
        yield Running(stack)
    finally:
        stack.stop()


def test_japanese_folder_with_spaces_is_found_by_word_and_folder(running: Running) -> None:
    key = "営業部/2024 年度 資料/顧客 打合せ メモ.txt"
    text = "本日の打合せでは、新製品の価格改定について協議した。次回は大阪支店で実施。"
    running.s3.put_object(Bucket=running.bucket, Key=key, Body=text.encode("cp932"))

    doc = running.wait_for(lambda: running.doc(key))

    assert doc["outcome"] == "indexed" and doc["folder"] == "営業部/2024 年度 資料/"
    assert "価格改定" in doc["text"]  # Shift_JIS decoded right
    by_word = running.search("協議")  # a two-character Japanese word
    assert [h["key"] for h in by_word["hits"]] == [key]
    by_folder = running.search("--folder", "営業部/2024 年度 資料")
    assert key in [h["key"] for h in by_folder["hits"]]
    assert running.search("--folder", "営業部/2024")["total"] == 0  # folder, not string prefix


def test_object_removed_removes_the_document(running: Running) -> None:
    key = "tmp/short-lived.md"
    running.s3.put_object(Bucket=running.bucket, Key=key, Body=b"# ephemeral notes\n")
    running.wait_for(lambda: running.doc(key))

    running.s3.delete_object(Bucket=running.bucket, Key=key)

    running.wait_for(lambda: running.doc(key) is None)
    assert running.search("ephemeral")["total"] == 0


def test_missing_object_is_dead_lettered_once_with_its_reason(running: Running) -> None:
    # Given an event for an object that does not exist (deleted before we got to it)
    key = "ghost/never-uploaded.pdf"
    event = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                          "eventTime": "2026-12-01T00:00:00.000Z",
                          "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": running.bucket},
                                 "object": {"key": "ghost/never-uploaded.pdf", "size": 10,
                                            "eTag": "0123"}}}]}
    running.sqs.send_message(QueueUrl=running.queue_url("filesearch-events"),
                             MessageBody=json.dumps(event))

    records = running.wait_for(lambda: [r for r in running.dead_letters()
                                        if r["object"].get("key") == key])

    (rec,) = records
    assert rec["reason"] == "object-gone" and rec["error_class"] == "ObjectGone"
    assert rec["task"] == "tasks.fetch" and rec["attempts"] == 1  # permanent: no retry
    assert rec["object"]["bucket"] == running.bucket
    for field in ("task_id", "args", "traceback", "first_failure_at", "last_failure_at",
                  "worker", "message"):
        assert rec[field], field
    # nothing left behind in the stage queues
    for queue in ("filesearch-fetch", "filesearch-extract-pdf", "filesearch-index"):
        attrs = running.sqs.get_queue_attributes(
            QueueUrl=running.queue_url(queue), AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "0", queue
    assert running.doc(key) is None


def test_large_text_travels_by_claim_check(running: Running) -> None:
    key = "big/long-report.txt"
    body = ("第一章 概要。" + "The quarterly figures are in line with the plan. " * 4000).encode()
    assert len(body) > 128 * 1024
    running.s3.put_object(Bucket=running.bucket, Key=key, Body=body)

    doc = running.wait_for(lambda: running.doc(key))

    assert len(doc["text"]) == len(body.decode())
    # the claim-checked text was discarded once indexed
    listed = running.s3.list_objects_v2(Bucket="filesearch-work", Prefix="extracted/")
    assert listed.get("KeyCount", 0) == 0


def test_lying_extension_is_handled_by_content(running: Running) -> None:
    key = "odd/actually-text.pdf"
    running.s3.put_object(Bucket=running.bucket, Key=key, Body=b"plain words, not a PDF\n")
    doc = running.wait_for(lambda: running.doc(key))
    assert doc["content_type"] == "text/plain" and doc["outcome"] == "indexed"


def test_demo_on_the_shared_corpus_matches_files_json(tmp_path: Path) -> None:
    corpus = Path(os.environ.get("SAMPLE_FILES_DIR", ROOT.parent / "shared/corpus/sample-files"))
    if not (corpus / "files.json").exists():
        unavailable(f"no sample corpus at {corpus}")
    report_path = tmp_path / "report.json"

    result = subprocess.run(
        [sys.executable, "-m", "devstack.demo", "--files", str(corpus), "--report",
         str(report_path), "--run-dir", str(tmp_path / "run"), "--timeout", "240"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    files = {f["key"]: f for f in report["files"]}
    assert report["summary"]["missing"] == 0
    expected = json.loads((corpus / "files.json").read_text())["data"]
    checked = 0
    for entry in expected:
        got = files.get(entry["path"])
        if got is None:  # listed in files.json but not shipped in this copy of the corpus
            continue
        if entry["encrypted"]:
            assert got["outcome"] == "metadata_only" and got["reason"] == "encrypted"
            assert got["chars"] == 0
        elif got["outcome"] == "indexed":
            assert got["pages"] == entry["pages"], entry["path"]
            checked += 1
        else:  # e.g. a PDF whose page tree PyMuPDF cannot recover: says why
            assert got["reason"], entry["path"]
    assert checked >= len(expected) - 3
    assert "files:" in result.stdout and "indexed" in result.stdout


class Versions:
    """A versioned bucket whose S3 events the test sends itself, in any order it likes."""

    def __init__(self, run: Running, key: str) -> None:
        self.run, self.key = run, key
        buckets = {b["Name"] for b in run.s3.list_buckets()["Buckets"]}
        if ORDERING not in buckets:
            run.s3.create_bucket(Bucket=ORDERING)
            run.s3.put_bucket_versioning(Bucket=ORDERING,
                                         VersioningConfiguration={"Status": "Enabled"})

    def put(self, body: bytes) -> str:
        return str(self.run.s3.put_object(Bucket=ORDERING, Key=self.key, Body=body)["VersionId"])

    def delete(self) -> str:
        return str(self.run.s3.delete_object(Bucket=ORDERING, Key=self.key)["VersionId"])

    def event(self, name: str, version_id: str, sequencer: str) -> None:
        record = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
                  "eventTime": "2026-12-01T00:00:00.000Z",
                  "s3": {"bucket": {"name": ORDERING},
                         "object": {"key": self.key.replace(" ", "+"), "versionId": version_id,
                                    "sequencer": sequencer}}}
        self.run.sqs.send_message(QueueUrl=self.run.queue_url("filesearch-events"),
                                  MessageBody=json.dumps({"Records": [record]}))

    def doc(self) -> Document | None:
        return self.run.index.get(document_id(ORDERING, self.key))

    def settled(self) -> bool:
        """True when every stage queue is empty (nothing visible, nothing in flight)."""
        for queue in ("filesearch-events", "filesearch-fetch", "filesearch-extract-other",
                      "filesearch-extract-pdf", "filesearch-extract-ocr", "filesearch-index"):
            attrs = self.run.sqs.get_queue_attributes(
                QueueUrl=self.run.queue_url(queue), AttributeNames=["All"])["Attributes"]
            if attrs["ApproximateNumberOfMessages"] != "0" or \
                    attrs["ApproximateNumberOfMessagesNotVisible"] != "0":
                return False
        return True


def test_create_create_delete_late_create_ends_deleted(running: Running) -> None:
    v = Versions(running, "order/contract v1.txt")
    first, second = v.put(b"draft contract"), v.put(b"signed contract")
    marker = v.delete()

    # S3 applied: put(first) < put(second) < delete; events arrive duplicated and out of order
    v.event("ObjectCreated:Put", first, "0055AED6DCD90281E5")
    v.event("ObjectCreated:Put", first, "0055AED6DCD90281E5")  # duplicate delivery
    v.event("ObjectRemoved:DeleteMarkerCreated", marker, "0055AED6DCD9028A11")
    v.event("ObjectCreated:Put", second, "0055AED6DCD9028301")  # late: older than the delete

    deleted_at = ObjectRef(ORDERING, v.key, sequencer="0055AED6DCD9028A11").order
    running.wait_for(lambda: running.index.is_stale(document_id(ORDERING, v.key), deleted_at))
    time.sleep(1.5)
    running.wait_for(v.settled)
    assert v.doc() is None
    assert running.search("contract")["total"] == 0


def test_late_older_version_does_not_replace_newer(running: Running) -> None:
    v = Versions(running, "order/price list.txt")
    old, new = v.put(b"price list 2023 edition"), v.put(b"price list 2024 edition")

    v.event("ObjectCreated:Put", new, "00617F08299329D189")
    running.wait_for(lambda: (v.doc() or {}).get("text", "").startswith("price list 2024"))
    v.event("ObjectCreated:Put", old, "00617F0829932900AA")  # arrives after, happened before
    v.event("ObjectCreated:Put", new, "00617F08299329D189")  # and a duplicate

    time.sleep(1.5)
    running.wait_for(v.settled)
    doc = v.doc()
    assert doc is not None and doc["text"] == "price list 2024 edition"
    assert doc["version_id"] == new


def test_reprocess_by_hand_with_celery_call(running: Running) -> None:
    # Given an object whose event never reached the pipeline (a bucket without notifications)
    Versions(running, "unused")
    key = "manual/never-notified.txt"
    running.s3.put_object(Bucket=ORDERING, Key=key, Body=b"found only after a manual run")

    # When an operator re-runs it with the celery CLI
    subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", "call", "tasks.reprocess",
                    "--kwargs", json.dumps({"bucket": ORDERING, "key": key})],
                   cwd=ROOT, env=running.env, check=True, capture_output=True, timeout=60)

    # Then the whole chain runs and the file is searchable
    doc = running.wait_for(lambda: running.index.get(document_id(ORDERING, key)))
    assert doc["text"] == "found only after a manual run"


def test_scanned_pdf_goes_through_the_ocr_queue(running: Running, tmp_path: Path) -> None:
    import shutil

    from tests.fixtures_files import scanned_pdf

    if shutil.which("tesseract") is None:
        unavailable("tesseract is not installed (make setup installs it)")
    key = "scans/invoice 2024.pdf"
    path = scanned_pdf(tmp_path / "scan.pdf", [["INVOICE NUMBER 4711", "Total due 1200 EUR"]])
    running.s3.put_object(Bucket=running.bucket, Key=key, Body=path.read_bytes())

    doc = running.wait_for(lambda: running.doc(key), timeout=120)

    assert doc["outcome"] == "indexed" and doc["metadata"].get("ocr") == "done"
    assert "INVOICE" in doc["text"].upper() and "1200" in doc["text"]
    workers = (running.stack.logs / "worker.log").read_text()
    assert "pages without text: on to OCR" in workers
    assert running.search("invoice")["hits"][0]["key"] == key
