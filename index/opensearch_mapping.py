"""Index settings, mapping and the ordering script of the OpenSearch backend.

Kept apart from the client code so the index layout reads in one place.  Changing anything here
that existing documents must be re-analysed for means a new ``MAPPING_VERSION`` and a rebuild
through the alias (``python -m index.opensearch rebuild --version N``; docs/opensearch.md).
"""

from __future__ import annotations

from typing import Any

#: version of the concrete index ``ensure_index()`` creates (``<alias>-v<MAPPING_VERSION>``)
MAPPING_VERSION = 1
#: folders returned in ``SearchResult.folders`` (the top ones by document count)
FOLDER_FACET_SIZE = 20
#: characters; keyword values longer than this are kept in ``_source`` but not indexed
KEYWORD_IGNORE_ABOVE = 2048

#: fields ``simple_query_string`` searches: the ``cjk`` fields find words in any script
#: (CJK bigrams); the ``.en`` subfields add English stemming and hold no CJK tokens at all
SEARCH_FIELDS = ("name", "name.en", "title", "title.en", "text", "text.en", "folder.words")

#: the ordering rule of ``index.base.supersedes`` applied atomically on the primary shard.
#: ``params.doc`` replaces the source unless the held order (live document or tombstone) is
#: equal or newer; ``params.keep`` names fields carried over from the held source (a tombstone
#: keeps ``bucket``/``key``); ``params.copy`` (rebuild catch-up) never overwrites on an unknown
#: order.  String ``compareTo`` is code-unit order, identical to Python's for the ASCII orders
#: ``ObjectRef.order`` produces.
ORDER_SCRIPT = """
String held = ctx._source.order;
String order = params.order;
boolean stale = held != null && (order.isEmpty() ? params.copy : order.compareTo(held) <= 0);
if (stale) {
  ctx.op = 'none';
} else {
  Map kept = new HashMap();
  for (String f : params.keep) {
    if (ctx._source.containsKey(f)) { kept.put(f, ctx._source.get(f)); }
  }
  ctx._source.clear();
  ctx._source.putAll(kept);
  ctx._source.putAll(params.doc);
  ctx._source.written_at = ctx._now;
}
"""

_KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}


def _text() -> dict[str, Any]:
    """A ``cjk`` text field with an English subfield and an exact keyword."""
    return {
        "type": "text",
        "analyzer": "cjk",
        "fields": {"en": {"type": "text", "analyzer": "english_latin"}, "raw": _KEYWORD},
    }


ANALYSIS: dict[str, Any] = {
    "tokenizer": {"folder_tokenizer": {"type": "path_hierarchy", "delimiter": "/"}},
    "filter": {
        # path_hierarchy keeps the trailing slash on the full path only; give every prefix
        # exactly one, so a term "a/" matches a/ and a/b/ but never ab/
        "folder_trailing_slash": {
            "type": "pattern_replace",
            "pattern": "^(.*?)/*$",
            "replacement": "$1/",
        },
        # the English subfields drop CJK tokens: "会議" must not match 会 ... 議 far apart
        "no_cjk": {
            "type": "keep_types",
            "mode": "exclude",
            "types": ["<IDEOGRAPHIC>", "<HIRAGANA>", "<KATAKANA>", "<HANGUL>"],
        },
        "english_stop": {"type": "stop", "stopwords": "_english_"},
        "english_stemmer": {"type": "stemmer", "language": "english"},
        "english_possessive": {"type": "stemmer", "language": "possessive_english"},
    },
    "analyzer": {
        "folder_prefixes": {
            "type": "custom",
            "tokenizer": "folder_tokenizer",
            "filter": ["folder_trailing_slash", "unique"],
        },
        "english_latin": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["no_cjk", "english_possessive", "lowercase", "english_stop",
                       "english_stemmer"],
        },
    },
}

MAPPINGS: dict[str, Any] = {
    # unknown top-level fields stay in _source but are never indexed (no mapping explosion)
    "dynamic": False,
    "properties": {
        "id": {"type": "keyword"},
        "order": {"type": "keyword"},
        "deleted": {"type": "boolean"},
        "bucket": _KEYWORD,
        "key": _KEYWORD,
        "folder": {
            "type": "text",
            "analyzer": "folder_prefixes",
            "search_analyzer": "keyword",
            "fields": {"raw": _KEYWORD, "words": {"type": "text", "analyzer": "cjk"}},
        },
        "name": _text(),
        "title": _text(),
        "author": _text(),
        # offsets in the postings: highlighting never re-analyses (no max_analyzed_offset cap)
        "text": {
            "type": "text",
            "analyzer": "cjk",
            "index_options": "offsets",
            "fields": {"en": {"type": "text", "analyzer": "english_latin"}},
        },
        "extension": _KEYWORD,
        "content_type": _KEYWORD,
        "etag": _KEYWORD,
        "checksum": _KEYWORD,
        "version_id": _KEYWORD,
        "outcome": _KEYWORD,
        "reason": _KEYWORD,
        "size": {"type": "long"},
        "pages": {"type": "integer"},
        "truncated": {"type": "boolean"},
        "last_modified": {"type": "date"},
        "indexed_at": {"type": "date"},
        #: set by ORDER_SCRIPT (epoch ms of the primary's clock); drives rebuild catch-up
        "written_at": {"type": "date", "format": "epoch_millis"},
        "metadata": {"type": "object", "enabled": False},
    },
}


def index_body(replicas: int = 0, shards: int = 1) -> dict[str, Any]:
    """The ``indices.create`` body of one concrete index version (no aliases)."""
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "analysis": ANALYSIS,
        },
        "mappings": MAPPINGS,
    }
