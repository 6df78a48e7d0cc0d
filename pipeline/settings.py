"""One frozen settings object, built from the environment and validated at start-up.

``celeryconfig.py``, the bridge, the workers and every command read their configuration from
``get_settings()`` and nowhere else.  An invalid value raises ``ConfigError`` naming the variable.
AWS itself is configured the standard boto3 way (credential chain, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SQS`` / ``_S3`` / ``_SNS``); see docs/configuration.md.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: profiles: ``local`` talks to a local endpoint only; ``production`` to whatever boto3 resolves
PROFILES = ("local", "production")
#: index backends selectable with INDEX_BACKEND
INDEX_BACKENDS = ("sqlite", "opensearch")
#: SQS limits
SQS_MAX_VISIBILITY_S = 43_200
SQS_MAX_DELAY_S = 900
SQS_MAX_WAIT_S = 20

#: logical Celery queue names of the task stages, in chain order
STAGE_QUEUES = ("fetch", "extract-pdf", "extract-other", "extract-ocr", "index")
#: stages whose retry limit can be set on its own (MAX_RETRIES_<STAGE>)
RETRY_STAGES = ("fetch", "extract", "index")
#: logical name of the queue that holds dead-letter records
DEAD_LETTER_QUEUE = "dead-letter"
#: logical name of the S3 events queue the bridge consumes
EVENTS_QUEUE = "events"
#: digests selectable with SIGNING_DIGEST
SIGNING_DIGESTS = ("sha256", "sha384", "sha512")


class ConfigError(ValueError):
    """A setting is missing, malformed, or contradicts another one."""


@dataclass(frozen=True)
class Settings:
    profile: str = "local"
    region: str = "us-east-1"
    #: endpoint overrides as boto3 resolves them (``None``: AWS)
    sqs_endpoint: str | None = None
    s3_endpoint: str | None = None
    sns_endpoint: str | None = None

    upload_bucket: str = "filesearch-uploads"
    #: bucket for claim-checked text; never the upload bucket (its events would loop back)
    work_bucket: str = "filesearch-work"
    #: buckets whose events are processed; others are ignored by the bridge and refused by tasks
    allowed_buckets: tuple[str, ...] = ("filesearch-uploads",)
    #: prefix of every SQS queue name this deployment owns
    queue_prefix: str = "filesearch-"

    #: seconds; each stage queue's VisibilityTimeout attribute.  Short, because the heartbeat
    #: extends it while a task runs: a crashed worker's message returns within this time
    visibility_timeout: int = 30
    #: extend the visibility of held messages while their tasks run (tasks.heartbeat)
    heartbeat_enabled: bool = True
    #: seconds between two extensions; at most a third of ``visibility_timeout``
    heartbeat_interval: int = 10
    #: seconds; Celery hard time limit (kills the task).  Without the heartbeat it must stay
    #: below ``visibility_timeout``
    task_time_limit: int = 1800
    #: seconds; Celery soft time limit (raises inside the task)
    task_soft_time_limit: int = 1740
    #: receives before SQS moves a message to the queue's DLQ (catches crashes, poison messages)
    max_receive_count: int = 5
    #: retries of a transient failure before dead-lettering
    max_retries: int = 5
    #: per-stage overrides of ``max_retries`` (``MAX_RETRIES_FETCH``, ``_EXTRACT``, ``_INDEX``)
    stage_max_retries: tuple[tuple[str, int], ...] = ()
    #: seconds; first retry delay, doubled each attempt, with jitter
    retry_backoff_base: float = 2.0
    #: seconds; cap on one retry delay (SQS cannot delay more than 900 s)
    retry_backoff_max: int = 600
    #: seconds; SQS long poll of workers (each idle queue may add up to this per poll round)
    worker_wait_time_seconds: int = 1
    #: seconds; SQS long poll of the bridge (one queue, so it can wait long)
    bridge_wait_time_seconds: int = 10
    worker_concurrency: int = 2
    #: Celery task events (Flower's task list, ``celery events``); off: ~+50 % throughput on a
    #: small machine, Flower then shows workers but no tasks (docs/performance.md)
    task_events: bool = True

    index_backend: str = "sqlite"
    sqlite_path: str = ".run/index.sqlite3"
    opensearch_url: str = "http://127.0.0.1:9200"
    opensearch_index: str = "filesearch"
    #: basic auth for a managed cluster (wins over user:password in the URL)
    opensearch_user: str = ""
    opensearch_password: str = field(default="", repr=False)
    opensearch_verify_certs: bool = True
    #: CA bundle for a private certificate authority
    opensearch_ca_certs: str = ""
    #: seconds per request
    opensearch_timeout: float = 30.0
    #: replicas of the index (0 on a single node)
    opensearch_replicas: int = 0

    #: bytes; objects larger than this are indexed metadata-only (reason too-large)
    max_object_bytes: int = 512 * 1024 * 1024
    max_pages: int = 10_000
    #: characters of text kept per file; the rest is cut and the document marked truncated
    max_chars: int = 5_000_000
    #: seconds of extraction wall time per file
    extract_max_seconds: int = 1500
    #: bytes of address space an extraction's sandbox process may use
    extract_max_memory_bytes: int = 1024 * 1024 * 1024
    #: pages (of a scanned PDF) that get OCR; the rest stay metadata/text-layer only
    max_ocr_pages: int = 50
    #: bytes; extracted text larger than this travels as an S3 object, not in the message
    inline_text_max_bytes: int = 64 * 1024

    #: fault injection, for tests only (refused with PIPELINE_PROFILE=production):
    #: probability that an index write fails with IndexUnavailable
    fault_index_transient_p: float = 0.0
    #: seconds an extraction sleeps before starting (simulates a long PDF)
    fault_extract_hang_s: float = 0.0
    #: probability that the pool process dies (os._exit) during an extraction
    fault_extract_crash_p: float = 0.0
    #: only keys starting with this prefix are disturbed ("" = all)
    fault_key_prefix: str = ""

    flower_port: int = 5555
    flower_basic_auth: str = ""
    log_level: str = "INFO"

    #: signed task messages (Celery's ``auth`` serializer; see docs/security.md): PEM private
    #: key and certificate of this process, and the file or directory of trusted certificates.
    #: All three set: every task message is signed and unsigned ones are dead-lettered; none: off
    signing_key_file: str = ""
    signing_cert_file: str = ""
    signing_cert_store: str = ""
    #: digest of the signatures (RSA-PSS)
    signing_digest: str = "sha256"

    # ---- derived names --------------------------------------------------------------------

    def queue_name(self, logical: str) -> str:
        """Physical SQS queue name of a logical queue (``fetch`` -> ``filesearch-fetch``)."""
        return f"{self.queue_prefix}{logical}"

    def dlq_name(self, logical: str) -> str:
        return f"{self.queue_prefix}{logical}-dlq"

    def retries_for(self, stage: str) -> int:
        """Max retries of one stage (``fetch``, ``extract``, ``index``)."""
        return dict(self.stage_max_retries).get(stage, self.max_retries)

    @property
    def is_local(self) -> bool:
        return self.profile == "local"

    @property
    def signing_enabled(self) -> bool:
        """Task messages are signed and verified (SIGNING_KEY_FILE & co. are set)."""
        return bool(self.signing_key_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings from ``env`` (default ``os.environ``).

        Raises:
            ConfigError: naming the first bad variable.
        """
        e = _Env(os.environ if env is None else env)
        endpoint = e.url("AWS_ENDPOINT_URL")
        upload_bucket = e.text("UPLOAD_BUCKET", cls.upload_bucket)
        settings = cls(
            profile=e.choice("PIPELINE_PROFILE", cls.profile, PROFILES),
            region=e.text("AWS_REGION", e.text("AWS_DEFAULT_REGION", cls.region)),
            sqs_endpoint=e.url("AWS_ENDPOINT_URL_SQS") or endpoint,
            s3_endpoint=e.url("AWS_ENDPOINT_URL_S3") or endpoint,
            sns_endpoint=e.url("AWS_ENDPOINT_URL_SNS") or endpoint,
            upload_bucket=upload_bucket,
            work_bucket=e.text("WORK_BUCKET", cls.work_bucket),
            allowed_buckets=e.items("ALLOWED_BUCKETS", (upload_bucket,)),
            queue_prefix=e.text("QUEUE_PREFIX", cls.queue_prefix),
            visibility_timeout=e.integer("VISIBILITY_TIMEOUT", cls.visibility_timeout, 1,
                                     SQS_MAX_VISIBILITY_S),
            heartbeat_enabled=e.choice("HEARTBEAT", "on", ("on", "off")) == "on",
            heartbeat_interval=e.integer("HEARTBEAT_INTERVAL", cls.heartbeat_interval, 1, 3600),
            task_time_limit=e.integer("TASK_TIME_LIMIT", cls.task_time_limit, 1),
            task_soft_time_limit=e.integer("TASK_SOFT_TIME_LIMIT", cls.task_soft_time_limit, 1),
            max_receive_count=e.integer("MAX_RECEIVE_COUNT", cls.max_receive_count, 1, 1000),
            max_retries=e.integer("MAX_RETRIES", cls.max_retries, 0, 100),
            stage_max_retries=tuple(
                (stage, e.integer(f"MAX_RETRIES_{stage.upper()}", 0, 0, 100))
                for stage in RETRY_STAGES if e.has(f"MAX_RETRIES_{stage.upper()}")),
            retry_backoff_base=e.number("RETRY_BACKOFF_BASE", cls.retry_backoff_base, 0.0),
            retry_backoff_max=e.integer("RETRY_BACKOFF_MAX", cls.retry_backoff_max, 0,
                                    SQS_MAX_DELAY_S),
            worker_wait_time_seconds=e.integer("WORKER_WAIT_TIME_SECONDS",
                                           cls.worker_wait_time_seconds, 0, SQS_MAX_WAIT_S),
            bridge_wait_time_seconds=e.integer("BRIDGE_WAIT_TIME_SECONDS",
                                           cls.bridge_wait_time_seconds, 0, SQS_MAX_WAIT_S),
            worker_concurrency=e.integer("WORKER_CONCURRENCY", cls.worker_concurrency, 1, 256),
            task_events=e.choice("TASK_EVENTS", "on", ("on", "off")) == "on",
            index_backend=e.choice("INDEX_BACKEND", cls.index_backend, INDEX_BACKENDS),
            sqlite_path=e.text("SQLITE_PATH", cls.sqlite_path),
            opensearch_url=e.url("OPENSEARCH_URL") or cls.opensearch_url,
            opensearch_index=e.text("OPENSEARCH_INDEX", cls.opensearch_index),
            opensearch_user=e.text("OPENSEARCH_USER", ""),
            opensearch_password=e.text("OPENSEARCH_PASSWORD", ""),
            opensearch_verify_certs=e.choice("OPENSEARCH_VERIFY_CERTS", "true",
                                             ("true", "false")) == "true",
            opensearch_ca_certs=e.text("OPENSEARCH_CA_CERTS", ""),
            opensearch_timeout=e.number("OPENSEARCH_TIMEOUT", 30.0, 0.1),
            opensearch_replicas=e.integer("OPENSEARCH_REPLICAS", 0, 0, 10),
            max_object_bytes=e.integer("MAX_OBJECT_BYTES", cls.max_object_bytes, 1),
            max_pages=e.integer("MAX_PAGES", cls.max_pages, 1),
            max_chars=e.integer("MAX_CHARS", cls.max_chars, 1),
            extract_max_seconds=e.integer("EXTRACT_MAX_SECONDS", cls.extract_max_seconds, 1),
            extract_max_memory_bytes=e.integer("EXTRACT_MAX_MEMORY_BYTES",
                                               cls.extract_max_memory_bytes, 64 * 1024 * 1024),
            max_ocr_pages=e.integer("MAX_OCR_PAGES", cls.max_ocr_pages, 0),
            inline_text_max_bytes=e.integer("INLINE_TEXT_MAX_BYTES", cls.inline_text_max_bytes, 0,
                                        200 * 1024),
            fault_index_transient_p=e.number("FAULT_INDEX_TRANSIENT_P", 0.0, 0.0),
            fault_extract_hang_s=e.number("FAULT_EXTRACT_HANG_S", 0.0, 0.0),
            fault_extract_crash_p=e.number("FAULT_EXTRACT_CRASH_P", 0.0, 0.0),
            fault_key_prefix=e.text("FAULT_KEY_PREFIX", ""),
            flower_port=e.integer("FLOWER_PORT", cls.flower_port, 1, 65535),
            flower_basic_auth=e.text("FLOWER_BASIC_AUTH", ""),
            log_level=e.choice("LOG_LEVEL", cls.log_level,
                               ("DEBUG", "INFO", "WARNING", "ERROR")),
            signing_key_file=e.text("SIGNING_KEY_FILE", ""),
            signing_cert_file=e.text("SIGNING_CERT_FILE", ""),
            signing_cert_store=e.text("SIGNING_CERT_STORE", ""),
            signing_digest=e.choice("SIGNING_DIGEST", cls.signing_digest, SIGNING_DIGESTS),
        )
        settings.validate()
        return settings

    def check_aws_endpoints(self) -> None:
        """Refuse a local profile whose AWS calls would silently go to real AWS.

        Called before any AWS client is made (so ``make search`` works without an endpoint).

        Raises:
            ConfigError: naming the endpoint variable.
        """
        if not self.is_local:
            return
        for var, value in (("AWS_ENDPOINT_URL_SQS", self.sqs_endpoint),
                           ("AWS_ENDPOINT_URL_S3", self.s3_endpoint)):
            if not value:
                raise ConfigError(
                    f"{var}: PIPELINE_PROFILE=local but no local endpoint is set, so the "
                    "broker would silently talk to real AWS; set AWS_ENDPOINT_URL (make up "
                    "does) or PIPELINE_PROFILE=production")
            host = urlsplit(value).hostname or ""
            if not (host in ("localhost", "::1") or host.startswith("127.")):
                raise ConfigError(f"{var}: PIPELINE_PROFILE=local needs a loopback endpoint, "
                                  f"got {value!r}")

    def validate(self) -> None:
        """Check invariants between settings.

        Raises:
            ConfigError: naming the variables that contradict each other.
        """
        if self.heartbeat_enabled:
            if self.heartbeat_interval * 3 > self.visibility_timeout:
                raise ConfigError(
                    f"HEARTBEAT_INTERVAL ({self.heartbeat_interval}s) must be at most a third of "
                    f"VISIBILITY_TIMEOUT ({self.visibility_timeout}s), so one missed beat does "
                    "not let a second worker take a running task's message")
        elif self.task_time_limit >= self.visibility_timeout:
            raise ConfigError(
                f"TASK_TIME_LIMIT ({self.task_time_limit}s) must be below VISIBILITY_TIMEOUT "
                f"({self.visibility_timeout}s) when HEARTBEAT=off, or a long task becomes "
                "visible to a second worker")
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ConfigError(f"TASK_SOFT_TIME_LIMIT ({self.task_soft_time_limit}s) must be below "
                              f"TASK_TIME_LIMIT ({self.task_time_limit}s)")
        if self.extract_max_seconds >= self.task_soft_time_limit:
            raise ConfigError(f"EXTRACT_MAX_SECONDS ({self.extract_max_seconds}s) must be below "
                              f"TASK_SOFT_TIME_LIMIT ({self.task_soft_time_limit}s)")
        faults = self.fault_index_transient_p or self.fault_extract_hang_s or \
            self.fault_extract_crash_p
        if faults and self.profile == "production":
            raise ConfigError("FAULT_*: fault injection is for tests and is refused with "
                              "PIPELINE_PROFILE=production")
        if self.fault_index_transient_p > 1 or self.fault_extract_crash_p > 1:
            raise ConfigError("FAULT_INDEX_TRANSIENT_P / FAULT_EXTRACT_CRASH_P: a probability "
                              "between 0 and 1")
        if self.work_bucket == self.upload_bucket:
            raise ConfigError("WORK_BUCKET must differ from UPLOAD_BUCKET: objects the pipeline "
                              "writes would raise events and loop")
        if self.upload_bucket not in self.allowed_buckets:
            raise ConfigError(f"ALLOWED_BUCKETS must include UPLOAD_BUCKET ({self.upload_bucket})")
        if self.flower_basic_auth and ":" not in self.flower_basic_auth:
            raise ConfigError("FLOWER_BASIC_AUTH: expected user:password")
        self._validate_signing()

    def _validate_signing(self) -> None:
        files = {"SIGNING_KEY_FILE": self.signing_key_file,
                 "SIGNING_CERT_FILE": self.signing_cert_file,
                 "SIGNING_CERT_STORE": self.signing_cert_store}
        missing = [name for name, value in files.items() if not value]
        if len(missing) not in (0, len(files)):
            raise ConfigError(f"{', '.join(missing)}: message signing needs SIGNING_KEY_FILE, "
                              "SIGNING_CERT_FILE and SIGNING_CERT_STORE together (or none)")
        for name, value in files.items():
            if value and not os.path.exists(value):
                raise ConfigError(f"{name}: no such file or directory: {value!r}")


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, built from ``os.environ`` on first use."""
    return Settings.from_env()


class _Env:
    """Typed access to environment variables; every error names the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def has(self, name: str) -> bool:
        return self._raw(name) is not None

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def url(self, name: str) -> str | None:
        value = self._raw(name)
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{name}: expected an http(s) URL, got {value!r}")
        return value

    def integer(self, name: str, default: int, low: int | None = None,
            high: int | None = None) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
        self._bounds(name, value, low, high)
        return value

    def number(self, name: str, default: float, low: float | None = None) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
        self._bounds(name, value, low, None)
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw not in choices:
            raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
        return raw

    def items(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return default
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    @staticmethod
    def _bounds(name: str, value: float, low: float | None, high: float | None) -> None:
        if low is not None and value < low:
            raise ConfigError(f"{name}: must be >= {low}, got {value}")
        if high is not None and value > high:
            raise ConfigError(f"{name}: must be <= {high}, got {value}")
