"""The search tool: a fixed BM25 index over a frozen corpus, from package data or a folder."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pytest

from core.records import ErrorKind
from tools.calls import ParsedCall
from tools.sandbox import Sandbox
from tools.search import (
    SEARCH_TOOLS,
    Corpus,
    CorpusError,
    Document,
    SearchIndex,
    SearchSandbox,
    load_index,
    snippet,
    tokenize,
)
from tools.toolbox import Toolbox

PACKAGED = "scenarios:data/debug_search_api/corpus"
NOW = datetime(2026, 3, 10, 9, 0)


def doc(doc_id: str, text: str, title: str = "t", version: str | None = None) -> Document:
    return Document(id=doc_id, title=title, date="2026-01-01", version=version, text=text)


def test_bm25_scores_match_the_lucene_formula_worked_by_hand() -> None:
    # Title "t" is indexed too: every document gets one extra token "t".
    docs = [doc("a", "cache cache deploy"), doc("b", "cache query"), doc("c", "billing invoice")]
    hits = SearchIndex(Corpus(docs)).search("cache", limit=10)
    n, df, k1, b = 3, 2, 1.5, 0.75
    lengths = {"a": 4, "b": 3, "c": 3}
    avgdl = sum(lengths.values()) / n
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))

    def score(tf: int, dl: int) -> float:  # Lucene >= 8 drops the constant (k1 + 1) factor
        return idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))

    assert [h.id for h in hits] == ["a", "b"]  # "c" shares no term: never returned
    assert hits[0].score == pytest.approx(score(2, lengths["a"]), abs=1e-4)
    assert hits[1].score == pytest.approx(score(1, lengths["b"]), abs=1e-4)


def test_ties_break_by_id_and_the_limit_holds() -> None:
    docs = [doc(f"d{i}", "same words here") for i in (3, 1, 2)]
    index = SearchIndex(Corpus(docs))
    assert [h.id for h in index.search("words", limit=2)] == ["d1", "d2"]
    assert index.search("absent", limit=5) == []
    with pytest.raises(ValueError, match="between 1 and 10"):
        index.search("words", limit=11)


def test_packaged_index_is_fixed_and_finds_the_fix_release() -> None:
    index = load_index(PACKAGED)
    assert load_index(PACKAGED) is index  # built once per process
    first = index.search("billing invoices refunds", limit=3)
    assert first[0].id == "billing-api" and first[0].version == "2.4.0"
    assert first[0].date == "2025-12-01"
    hits = index.search("search-sdk 3.2.1 release notes", limit=5)
    assert hits[0].id == "sdk-3.2.1-release-notes"
    again = index.search("search-sdk 3.2.1 release notes", limit=5)
    assert [h.model_dump() for h in hits] == [h.model_dump() for h in again]


def test_snippet_is_the_passage_with_most_query_terms() -> None:
    text = "Intro line.\nCache.initialize() fixes the deploy race.\nOther words about cache."
    assert (
        snippet(text, tokenize("deploy race cache")) == "Cache.initialize() fixes the deploy race."
    )
    assert len(snippet("word " * 200, ["word"])) == 240


def test_dotted_names_match_their_parts_but_versions_do_not_split() -> None:
    assert tokenize("SearchClient.query() v3.2.1") == [
        "searchclient.query",
        "searchclient",
        "query",
        "v3.2.1",
        "v3",
    ]


def test_user_corpus_folder_with_markdown_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "---\nid: guide\ntitle: Guide\nversion: 1.2\ndate: 2025-02-03\n---\nHow to rotate keys.\n"
    )
    (tmp_path / "more.jsonl").write_text(
        '{"id": "note", "title": "Note", "date": "2024-01-01", "text": "rotate the logs"}\n'
    )
    index = load_index(str(tmp_path))
    hits = index.search("rotate keys", limit=5)
    assert [h.id for h in hits] == ["guide", "note"]
    assert hits[0].version == "1.2"


def test_bad_corpus_files_name_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad.md").write_text("---\nid: x\ntitle: X\ndate: not-a-date\n---\ntext\n")
    with pytest.raises(CorpusError, match=r"bad\.md: document 'x': field 'date'"):
        Corpus.from_folder(tmp_path)
    (tmp_path / "bad.md").write_text("no front matter here")
    with pytest.raises(CorpusError, match="no front matter"):
        Corpus.from_folder(tmp_path)
    with pytest.raises(CorpusError, match="not a folder"):
        Corpus.from_folder(tmp_path / "missing")
    with pytest.raises(CorpusError, match="duplicate document id"):
        Corpus([doc("same", "x"), doc("same", "y")])


def run_tool(name: str, arguments: dict, ctx: Sandbox):  # type: ignore[no-untyped-def]
    call = ParsedCall(raw="", name=name, arguments=arguments)
    return Toolbox(SEARCH_TOOLS).run(call, ctx)


def test_tools_return_hits_and_documents_and_errors_are_observations() -> None:
    ctx = SearchSandbox(now=NOW, search_index=load_index(PACKAGED))
    found = run_tool("search_docs", {"query": "Cache.initialize deploy", "limit": 2}, ctx)
    assert found.error_kind is None and found.text.count('"id"') == 2
    read = run_tool("read_document", {"doc_id": "sdk-cache"}, ctx)
    assert '"version": "3.2.0"' in read.text and "Cache.initialize(client, ttl=300)" in read.text
    missing = run_tool("read_document", {"doc_id": "nope"}, ctx)
    assert (
        missing.error_kind == ErrorKind.INVALID_VALUE
        and "no document with id 'nope'" in missing.text
    )
    too_many = run_tool("search_docs", {"query": "cache", "limit": 50}, ctx)
    assert too_many.error_kind == ErrorKind.INVALID_VALUE
    unwired = run_tool("search_docs", {"query": "cache"}, Sandbox(now=NOW))
    assert unwired.error_kind == ErrorKind.TOOL_EXCEPTION
