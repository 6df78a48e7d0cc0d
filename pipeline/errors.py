"""One error tree for the whole pipeline.

``TransientError`` is retried with backoff; ``PermanentError`` is never retried and goes straight
to the dead-letter queue.  Any other exception counts as transient until the retry limit.
Every error carries a short machine-readable ``reason`` that ends up in dead-letter records,
metadata-only documents and the demo report.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    #: short, stable, kebab-case identifier used in reports and metrics
    reason: str = "pipeline-error"

    def __init__(self, message: str = "", **context: object) -> None:
        super().__init__(message or self.__class__.__doc__ or self.reason)
        self.context = context


class TransientError(PipelineError):
    """A failure that may go away by itself; retried with exponential backoff."""

    reason = "transient"


class PermanentError(PipelineError):
    """A failure that will not go away by retrying; dead-lettered at once."""

    reason = "permanent"


# --- transient -------------------------------------------------------------------------------


class ThrottledError(TransientError):
    """AWS or the index asked us to slow down (throttling, HTTP 429)."""

    reason = "throttled"


class ServiceUnavailable(TransientError):
    """A dependency answered 5xx or could not be reached."""

    reason = "service-unavailable"


class IndexUnavailable(TransientError):
    """The search index could not be written or read right now."""

    reason = "index-unavailable"


# --- permanent -------------------------------------------------------------------------------


class ContentError(PermanentError):
    """The file itself cannot be extracted; it is indexed metadata-only with this reason.

    Every file must stay findable by name and folder, so content errors end in a metadata-only
    document rather than in the dead-letter queue.
    """

    reason = "content-error"


class ObjectGone(PermanentError):
    """The S3 object (or the version named by the event) no longer exists."""

    reason = "object-gone"


class FileTooLarge(ContentError):
    """The object is larger than the configured maximum size."""

    reason = "too-large"


class EmptyFile(ContentError):
    """The object has zero bytes."""

    reason = "empty-file"


class CorruptFile(ContentError):
    """The file's content cannot be parsed as the type it claims to be."""

    reason = "corrupt-file"


class UnsupportedMediaType(ContentError):
    """No extractor exists for the detected media type."""

    reason = "unsupported-type"


class HostileFile(ContentError):
    """The file trips a safety limit (zip bomb, entity expansion, structure loop, resource cap)."""

    reason = "hostile-file"


class TooManyPages(ContentError):
    """The document has more pages than the configured maximum."""

    reason = "too-many-pages"


class ExtractionTimeout(ContentError):
    """Extraction of the file exceeded its wall-time limit."""

    reason = "extraction-timeout"


class BucketNotAllowed(PermanentError):
    """The object's bucket is not in the configured allow-list."""

    reason = "bucket-not-allowed"


class MalformedEvent(PermanentError):
    """An event message could not be parsed into S3 object records."""

    reason = "malformed-event"


class MappingRejected(PermanentError):
    """The index refused the document itself (mapping or parse error)."""

    reason = "mapping-rejected"


class InvalidTaskArguments(PermanentError):
    """A task message carried arguments that do not describe an object."""

    reason = "invalid-arguments"


def reason_of(exc: BaseException) -> str:
    """The reason string for any exception: its ``reason`` or ``unexpected:<ClassName>``."""
    if isinstance(exc, PipelineError):
        return exc.reason
    return f"unexpected:{type(exc).__name__}"
