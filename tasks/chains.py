"""The chain for one S3 event, picked by file type: fetch -> extract-<kind> -> index.

The bridge only knows the key, so the extract queue is first guessed from the extension;
``fetch`` reads the first bytes and re-routes to the queue of what the file really is.
"""

from __future__ import annotations

from celery.canvas import Signature, chain

from extractors import guess_media_type_from_name, queue_kind
from pipeline.objects import ObjectRef
from tasks.extract import extract
from tasks.fetch import fetch
from tasks.index import index, remove


def chain_for(obj: ObjectRef) -> Signature:
    if obj.is_removal:
        return remove.si(obj.to_dict()).set(queue="index")
    kind = queue_kind(guess_media_type_from_name(obj.name))
    return chain(fetch.si(obj.to_dict()).set(queue="fetch"),
                 extract.s().set(queue=f"extract-{kind}"),
                 index.s().set(queue="index"))
