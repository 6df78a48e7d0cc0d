"""Extraction of an untrusted file in a forked child under memory, CPU and wall-time limits.

The child sets ``RLIMIT_AS`` (``Limits.max_memory_bytes``) and ``RLIMIT_CPU``
(``Limits.cpu_seconds``), runs ``extract_file`` and writes the result as JSON to a pipe.  The
parent reads the pipe while it waits, kills the child when ``Limits.max_seconds`` run out, and
turns what happened into an ``Extraction`` or a ``ContentError``:

* wall time out -> ``ExtractionTimeout``;
* killed by a signal (``SIGKILL``, ``SIGXCPU`` from the CPU limit, ``SIGSEGV``), ``MemoryError``,
  or no answer -> ``HostileFile("resource limit ...")``;
* a ``ContentError`` in the child -> the same class, with the same message, in the parent;
* ``OSError`` in the child (the file cannot be read) -> ``OSError`` in the parent.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import resource
import selectors
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from extractors.base import Extraction, Limits
from pipeline import errors
from pipeline.errors import ContentError, ExtractionTimeout, HostileFile

# imported once in the worker, before the per-file fork, so each child inherits it warm
# (re-importing PyMuPDF in every child cost ~100 ms CPU per file); the PDF extractor itself
# says how to install it when it is missing
with contextlib.suppress(ImportError):
    import pymupdf  # noqa: F401

logger = logging.getLogger(__name__)

#: bytes read from the pipe per call
READ_CHUNK = 1024 * 1024
#: seconds given to the child after the wall-time limit for the CPU limit's SIGXCPU to land
GRACE_SECONDS = 1.0
#: exit status of a child that sent its answer
_ANSWERED = 0


def _content_error_class(name: str) -> type[ContentError]:
    """The ``ContentError`` subclass called ``name`` (``ContentError`` itself if unknown)."""
    found = getattr(errors, name, None)
    if isinstance(found, type) and issubclass(found, ContentError):
        return found
    return ContentError


def _set_limits(limits: Limits) -> None:
    """Apply the address-space and CPU limits to this (child) process."""
    memory = int(limits.max_memory_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, int(limits.cpu_seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _child_answer(path: Path, filename: str, limits: Limits, ocr: bool,
                  content_type: str | None) -> dict[str, Any]:  # fmt: skip
    """Run the extraction (in the child) and describe its result as a JSON-safe dict."""
    from extractors import extract_file

    try:
        _set_limits(limits)
        result = extract_file(path, filename=filename, limits=limits, content_type=content_type,
                              ocr=ocr)  # fmt: skip
        return {"extraction": asdict(result)}
    except ContentError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    except MemoryError:
        return {"error": "HostileFile", "message": "resource limit: out of memory "
                f"(limit {limits.max_memory_bytes} bytes)"}  # fmt: skip
    except OSError as exc:
        return {"oserror": exc.errno, "message": str(exc)}


def _run_child(write_fd: int, path: Path, filename: str, limits: Limits, ocr: bool,
               content_type: str | None) -> None:  # fmt: skip
    """The child's whole life: answer on ``write_fd``, then ``os._exit`` (no cleanup handlers)."""
    status = 1
    faulthandler.disable()  # a crash is an expected outcome here: the parent reports it
    try:
        answer = _child_answer(path, filename, limits, ocr, content_type)
        data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(write_fd, view)
            view = view[written:]
        status = _ANSWERED
    except BaseException:
        try:
            logger.exception("sandboxed extraction of %s crashed", filename)
        finally:
            status = 1
    finally:
        os._exit(status)


def _collect(pid: int, read_fd: int, limits: Limits) -> tuple[bytes, int, bool]:
    """Read the child's answer until EOF; returns ``(answer, wait status, timed out)``."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + limits.max_seconds
    timed_out = False
    with selectors.DefaultSelector() as selector:
        selector.register(read_fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not selector.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(read_fd, READ_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks), status, timed_out


def extract_isolated(
    path: Path,
    *,
    filename: str,
    limits: Limits,
    ocr: bool = False,
    content_type: str | None = None,
) -> Extraction:
    """``extract_file`` (with OCR when ``ocr``) in a forked child under ``limits``.

    Raises ``ExtractionTimeout`` past ``limits.max_seconds``, ``HostileFile`` when the child is
    killed by a resource limit or runs out of memory, the child's ``ContentError`` (same class and
    message), and ``OSError`` if the file cannot be read or the child cannot be forked.
    """
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        _run_child(write_fd, path, filename, limits, ocr, content_type)
    os.close(write_fd)
    try:
        data, status, timed_out = _collect(pid, read_fd, limits)
    finally:
        os.close(read_fd)
    if timed_out:
        raise ExtractionTimeout(
            f"{filename}: no result within {limits.max_seconds}s; child killed",
            max_seconds=limits.max_seconds,
        )
    return _result(filename, data, status, limits)


def _result(filename: str, data: bytes, status: int, limits: Limits) -> Extraction:
    """The extraction the child answered, or the error its answer or its death means."""
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise HostileFile(
            f"resource limit: {filename} extraction killed by {name} "
            f"(memory {limits.max_memory_bytes} bytes, CPU {limits.cpu_seconds}s)",
            signal=name,
        )
    try:
        answer: dict[str, Any] = json.loads(data.decode("utf-8")) if data else {}
    except ValueError:
        answer = {}
    if "extraction" in answer:
        return Extraction(**answer["extraction"])
    if "error" in answer:
        raise _content_error_class(answer["error"])(answer["message"])
    if "oserror" in answer:
        raise OSError(answer["oserror"], answer["message"])
    raise HostileFile(
        f"resource limit: {filename} extraction ended without a result "
        f"(exit status {os.waitstatus_to_exitcode(status)})"
    )
