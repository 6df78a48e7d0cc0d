"""Signed task messages, and the other guards of docs/security.md.

- settings: the three SIGNING_* files come together or not at all, and must exist;
- ``pipeline.signing.configure``: off when unset; on, it signs and verifies (checked in a
  subprocess: Celery's ``setup_security`` changes kombu's process-wide serializer registry);
- ``pipeline.redact``: credentials and presigned URLs never reach a log line;
- over the wire, with signing on in the bridge and the workers: an uploaded file is indexed
  (every stage's message signed and verified), while an unsigned task message, one signed by an
  untrusted key, a tampered one and a pickle one are each dead-lettered with their reason and
  never run.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devstack.stack import ROOT, Stack
from pipeline.objects import ObjectRef
from pipeline.redact import MASK, RedactingFilter, redact
from pipeline.settings import ConfigError, Settings
from tests.test_consumer import publish, queue_is_empty, record_for, refuses_pickle, task_message
from tests.test_pipeline_e2e import Running
from tests.test_reliability import events_for, start

# ---- throwaway identities -------------------------------------------------------------------


def make_identity(directory: Path, name: str) -> tuple[Path, Path]:
    """A new RSA key and a self-signed certificate for it (valid one day): (key, cert) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"filesearch {name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def signing_env(tmp_path: Path) -> dict[str, str]:
    """SIGNING_* for the pipeline's own identity; its certificate alone is trusted."""
    key, cert = make_identity(tmp_path / "pki", "pipeline")
    store = tmp_path / "pki" / "trusted"
    store.mkdir()
    (store / cert.name).write_bytes(cert.read_bytes())
    return {"SIGNING_KEY_FILE": str(key), "SIGNING_CERT_FILE": str(cert),
            "SIGNING_CERT_STORE": str(store)}


def sign(body: Any, key: Path, cert: Path) -> bytes:
    """``body`` signed as Celery's ``auth`` serializer does (without touching any registry)."""
    from celery.security.certificate import Certificate
    from celery.security.key import PrivateKey
    from celery.security.serialization import SecureSerializer

    serializer = SecureSerializer(PrivateKey(key.read_text()), Certificate(cert.read_text()),
                                  None, "sha256", "json")
    signed: bytes = serializer.serialize(body)
    return signed


def tamper(signed: bytes, old: bytes, new: bytes) -> bytes:
    """The signed message with its body changed after signing (the signature kept)."""
    from celery.security.serialization import DEFAULT_SEPARATOR

    fields = base64.b64decode(signed).split(DEFAULT_SEPARATOR, 4)
    assert old in fields[4]
    fields[4] = fields[4].replace(old, new)
    return base64.b64encode(DEFAULT_SEPARATOR.join(fields))


# ---- settings -------------------------------------------------------------------------------


def test_signing_is_off_without_settings() -> None:
    assert not Settings.from_env({}).signing_enabled


def test_signing_files_come_together(tmp_path: Path) -> None:
    env = signing_env(tmp_path)
    assert Settings.from_env(env).signing_enabled
    for missing in env:
        with pytest.raises(ConfigError, match=missing):
            Settings.from_env({k: v for k, v in env.items() if k != missing})


def test_a_missing_signing_file_names_its_variable(tmp_path: Path) -> None:
    env = {**signing_env(tmp_path), "SIGNING_CERT_STORE": str(tmp_path / "nowhere")}
    with pytest.raises(ConfigError, match="SIGNING_CERT_STORE"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match="SIGNING_DIGEST"):
        Settings.from_env({**signing_env(tmp_path / "b"), "SIGNING_DIGEST": "md5"})


# ---- configure ------------------------------------------------------------------------------

CONFIGURE = textwrap.dedent("""
    import base64, json, sys
    from celery import Celery
    from kombu.serialization import dumps, loads
    from pipeline import signing
    from pipeline.settings import Settings

    app = Celery("t", set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])
    on = signing.configure(app, Settings.from_env(json.loads(sys.argv[1])))
    out = {"on": on, "task_serializer": app.conf.task_serializer,
           "accept_content": list(app.conf.accept_content)}
    if on:
        ctype, enc, body = dumps({"args": [1]}, serializer="auth")
        out["content_type"] = ctype
        out["roundtrip"] = loads(body, ctype, enc, accept=["application/data"])
        from celery.security.serialization import DEFAULT_SEPARATOR
        fields = base64.b64decode(body).split(DEFAULT_SEPARATOR, 4)
        fields[4] = fields[4].replace(b"1", b"2")
        tampered = base64.b64encode(DEFAULT_SEPARATOR.join(fields))
        try:
            loads(tampered, ctype, enc, accept=["application/data"])
            out["tampered"] = "accepted"
        except Exception as exc:
            out["tampered"] = type(exc).__name__ + ":" + type(exc.args[0]).__name__
        try:
            loads(b"\\x80\\x04N.", "application/x-python-serialize", "binary",
                  accept=app.conf.accept_content)
            out["pickle"] = "accepted"
        except Exception as exc:
            out["pickle"] = type(exc).__name__
    print(json.dumps(out))
""")


def run_configure(env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", CONFIGURE, json.dumps(env)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_configure_leaves_json_alone_when_signing_is_off() -> None:
    assert run_configure({}) == {"on": False, "task_serializer": "json",
                                 "accept_content": ["json"]}


def test_configure_signs_verifies_and_refuses_everything_else(tmp_path: Path) -> None:
    out = run_configure(signing_env(tmp_path))
    assert out["on"] and out["task_serializer"] == "auth"
    assert out["accept_content"] == ["auth"] and out["content_type"] == "application/data"
    assert out["roundtrip"] == {"args": [1]}
    assert out["tampered"] == "DecodeError:SecurityError"  # what tasks.consumer classifies
    assert out["pickle"] == "ContentDisallowed"


# ---- redaction ------------------------------------------------------------------------------

SECRETS = [
    ("https://b.s3.amazonaws.com/k.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
     "AKIAIOSFODNN7EXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc123def",
     ("AKIAIOSFODNN7EXAMPLE", "abc123def")),
    ("https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=s%2Fig&x=1",
     ("AKIAIOSFODNN7EXAMPLE", "s%2Fig")),
    ("https://filesearch:hunter2@search.internal:9200", ("hunter2",)),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ("wJalrXUtnFEMI",)),
    ('{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG", "SessionToken": "FwoGZXIvYXdzEJr"}',
     ("wJalrXUtnFEMI", "FwoGZXIvYXdzEJr")),
    ("Authorization: AWS4-HMAC-SHA256 Credential=AKIA/20250101, Signature=deadbeef",
     ("deadbeef",)),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
     ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",)),
    ("temporary key ASIAY34FZKBOKMUTVV7A in use", ("Y34FZKBOKMUTVV7A",)),
]


@pytest.mark.parametrize(("text", "secrets"), SECRETS)
def test_redact_masks_credentials_and_presigned_urls(text: str, secrets: tuple[str, ...]) -> None:
    masked = redact(text)
    assert MASK in masked
    for secret in secrets:
        assert secret not in masked


def test_redact_keeps_ordinary_log_lines() -> None:
    line = ("fetched s3://filesearch-uploads/reports/2024 年度/q1.pdf size=1024 "
            "media_type=application/pdf reason=invalid-signature")
    assert redact(line) == line


def test_the_filter_redacts_messages_arguments_extras_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(url)s"))
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("tests.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        url = "https://b.s3.amazonaws.com/k?X-Amz-Signature=topsecret"
        try:
            raise RuntimeError("password=opensesame")
        except RuntimeError:
            log.exception("download %s failed", url, extra={"url": url})
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "topsecret" not in text and "opensesame" not in text
    assert text.count(MASK) >= 3


# ---- over the wire --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    """Bridge + worker with signing on; the pipeline's identity in ``<dir>/pki``."""
    run_dir = tmp_path_factory.mktemp("signed")
    stack = start(run_dir, signing_env(run_dir))
    try:
        yield stack, run_dir
    finally:
        stack.stop()


def never_ran(stack: Stack, key: str) -> bool:
    return not any(events_for(stack, "worker", key, msg)
                   for msg in ("fetched", "extracted", "indexed", "dead-lettered"))


@pytest.mark.stack
def test_signed_chain_from_the_bridge_runs_every_stage(signed_stack: tuple[Stack, Path]) -> None:
    # Given a bridge and workers that sign and accept only signed task messages
    stack, _ = signed_stack
    running = Running(stack)

    # When a file is uploaded
    running.s3.put_object(Bucket=running.bucket, Key="signed/hello.txt", Body=b"signed hello")

    # Then its chain (bridge -> fetch -> extract -> index, each message signed) indexes it
    doc = running.wait_for(lambda: running.doc("signed/hello.txt"), timeout=90)
    assert doc["outcome"] == "indexed"


@pytest.mark.stack
@pytest.mark.parametrize("forgery", ["unsigned", "untrusted-key", "tampered"])
def test_task_message_without_a_valid_signature_is_dead_lettered_never_run(
        signed_stack: tuple[Stack, Path], forgery: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack, run_dir = signed_stack
    running = Running(stack)
    key = f"forged/{forgery}.txt"
    ref = ObjectRef(bucket=running.bucket, key=key, event_name="ObjectCreated:Put").to_dict()
    headers, body = task_message("tasks.fetch", [ref])
    if forgery == "unsigned":
        payload, content_type = json.dumps(body).encode(), "application/json"
    elif forgery == "untrusted-key":
        payload = sign(body, *make_identity(tmp_path, "intruder"))
        content_type = "application/data"
    else:
        pki = run_dir / "pki"
        payload = tamper(sign(body, pki / "pipeline.key", pki / "pipeline.pem"),
                         key.encode(), b"forged/changed.txt")
        content_type = "application/data"

    publish(stack, "fetch", payload, content_type, "utf-8", headers, monkeypatch)

    record = record_for(running, headers["id"])
    assert record["reason"] == "invalid-signature", record
    assert record["error_class"] == "InvalidSignature" and record["task"] == "tasks.fetch"
    assert record["raw"]["content_type"] == content_type and record["raw"]["body"]["data"]
    running.wait_for(lambda: queue_is_empty(running, "filesearch-fetch"), timeout=30)
    assert never_ran(stack, key) and never_ran(stack, "forged/changed.txt")


@pytest.mark.stack
def test_pickle_is_refused_with_signing_on_too(signed_stack: tuple[Stack, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    stack, _ = signed_stack
    refuses_pickle(stack, tmp_path, monkeypatch)
