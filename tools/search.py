"""Search over a frozen document corpus (BM25, `bm25s`), as tools any env can offer.

Contract
--------
* A **corpus** is a folder of documents: Markdown files with a YAML front matter
  (`id`, `title`, `date`, optional `version`) and/or JSONL files (one document per line
  with the same fields plus `text`). `Corpus.from_folder(path)` reads a user's folder;
  `load_index("scenarios:data/debug_search_api/corpus")` reads packaged data through
  `importlib.resources` (so it works from an installed wheel). A bad file is a
  `CorpusError` naming the file, the document and the field.
* A **`SearchIndex`** is built once per corpus (cached per process) and never changes:
  the same query always gives the same hits in the same order. Ranking is BM25 (Lucene
  variant, k1=1.5, b=0.75) over lowercase word tokens of title + text; ties are broken by
  document id, and documents that share no term with the query are never returned.
* `search(query, limit)` returns up to `limit` (1..`MAX_RESULTS`) `SearchHit`s: id,
  title, version, date, a snippet (the passage with most query terms, at most
  `SNIPPET_CHARS` characters) and the score rounded to 4 decimals.
* Tools: `search_docs(query, limit)` and `read_document(doc_id)` run against the
  episode's sandbox; the env attaches the index with a `SearchSandbox` (or any sandbox
  with a `search_index` attribute). A bad argument is an observation, never a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import date
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.sandbox import Sandbox
from tools.schema import tool
from tools.toolbox import ToolInputError

MAX_RESULTS = 10
SNIPPET_CHARS = 240
MAX_DOCUMENT_CHARS = 3000
TOKEN = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
_STOPWORDS = (
    "a an and are as at be by for from has have in is it its of on or that the this to was "
    "were will with i my me we our you your what how why when do does did not no can"
)
STOPWORDS = frozenset(_STOPWORDS.split(" "))
FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n?(.*)\Z", re.DOTALL)


class CorpusError(ValueError):
    """A corpus file that cannot be read (names the file, the document and the field)."""


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    date: date
    version: str | None = None
    text: str = ""


class SearchHit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    title: str
    version: str | None
    date: str
    snippet: str
    score: float


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens (dotted names such as `3.2.1` or `client.query` stay whole)."""
    tokens = []
    for token in TOKEN.findall(text.lower()):
        if token not in STOPWORDS:
            tokens.append(token)
            if "." in token:  # `searchclient.query` also matches `query` (not `3.2.1` → `3`)
                tokens.extend(
                    part
                    for part in token.split(".")
                    if part not in STOPWORDS and not part.isdigit()
                )
    return tokens


class Corpus:
    def __init__(self, documents: Iterable[Document], *, source: str = "<memory>") -> None:
        self.documents = tuple(sorted(documents, key=lambda d: d.id))
        self.source = source
        seen: set[str] = set()
        for doc in self.documents:
            if doc.id in seen:
                raise CorpusError(f"{source}: duplicate document id '{doc.id}'")
            seen.add(doc.id)
        if not self.documents:
            raise CorpusError(f"{source}: no documents (*.md with front matter, or *.jsonl)")

    @classmethod
    def from_folder(cls, folder: Path | Traversable) -> Corpus:
        if isinstance(folder, Path) and not folder.is_dir():
            raise CorpusError(f"{folder}: not a folder")
        documents: list[Document] = []
        for node in sorted(folder.iterdir(), key=lambda n: n.name):
            if node.name.endswith(".md"):
                documents.append(_markdown_document(node))
            elif node.name.endswith(".jsonl"):
                documents.extend(_jsonl_documents(node))
        return cls(documents, source=str(folder))


class SearchIndex:
    """BM25 over a corpus; built once, read-only afterwards."""

    def __init__(self, corpus: Corpus) -> None:
        import bm25s  # imported here: `import envs` stays light

        self.corpus = corpus
        self._by_id = {doc.id: doc for doc in corpus.documents}
        self._vocab: dict[str, int] = {}
        ids = [
            [self._vocab.setdefault(token, len(self._vocab)) for token in tokenize(text) or [""]]
            for text in (f"{doc.title}\n{doc.text}" for doc in corpus.documents)
        ]
        self._bm25 = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        self._bm25.index((ids, self._vocab), show_progress=False)  # ids: no second tokenizing

    def __len__(self) -> int:
        return len(self.corpus.documents)

    def get(self, doc_id: str) -> Document | None:
        return self._by_id.get(doc_id)

    def search(self, query: str, limit: int = 5) -> list[SearchHit]:
        if not 1 <= limit <= MAX_RESULTS:
            raise ValueError(f"limit must be between 1 and {MAX_RESULTS}, got {limit}")
        terms = [t for t in dict.fromkeys(tokenize(query)) if t in self._vocab]
        if not terms:
            return []
        raw = self._bm25.get_scores([self._vocab[t] for t in terms])
        scores = np.round(np.asarray(raw, dtype=np.float64), 6)
        matched = np.flatnonzero(scores > 0)
        # Best score first; ties by position, which is id order (the corpus is sorted by id).
        order = matched[np.lexsort((matched, -scores[matched]))][:limit]
        documents = self.corpus.documents
        return [self._hit(documents[i], float(scores[i]), terms) for i in order.tolist()]

    def _hit(self, doc: Document, score: float, terms: Sequence[str]) -> SearchHit:
        return SearchHit(
            id=doc.id,
            title=doc.title,
            version=doc.version,
            date=doc.date.isoformat(),
            snippet=snippet(doc.text, terms),
            score=round(score, 4),
        )


def snippet(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """The line (or sentence) holding most query terms, clipped to `width` characters."""
    passages = [p.strip() for p in re.split(r"\n+|(?<=[.!?])\s+", text) if p.strip()]
    if not passages:
        return ""
    wanted = set(terms)
    best = max(passages, key=lambda p: len(wanted & set(tokenize(p))))  # first of the best
    return best if len(best) <= width else best[: width - 3].rstrip() + "..."


@cache
def load_index(source: str) -> SearchIndex:
    """The index of a corpus: a `"package:folder"` resource or a filesystem folder."""
    if ":" in source and not Path(source).exists():
        return SearchIndex(Corpus.from_folder(_packaged(source)))
    return SearchIndex(Corpus.from_folder(Path(source)))


def _packaged(ref: str) -> Traversable:
    """A packaged folder from `"package:relative/path"` (read through importlib.resources)."""
    package, _, relative = ref.partition(":")
    try:
        node = resources.files(package)
    except ModuleNotFoundError:
        raise CorpusError(f"corpus '{ref}': no package '{package}'") from None
    for part in relative.split("/"):
        node = node.joinpath(part)
    if not node.is_dir():
        raise CorpusError(f"corpus '{ref}': no folder '{relative}' in package '{package}'")
    return node


class SearchSandbox(Sandbox):
    """A sandbox that carries a search index for `search_docs` / `read_document`."""

    def __init__(self, *, search_index: SearchIndex, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.search_index = search_index


def _index_of(ctx: Sandbox) -> SearchIndex:
    index = getattr(ctx, "search_index", None)
    if not isinstance(index, SearchIndex):  # the env's wiring, not the agent's call
        raise RuntimeError("this env attached no search index to its sandbox")
    return index


@tool
def search_docs(ctx: Sandbox, query: str, limit: int = 5) -> list[dict[str, Any]]:
    """Search the documentation and changelogs. Best matches first, with dates and versions.

    Args:
        query: Keywords, e.g. "SearchClient 500 errors deprecated".
        limit: How many results to return (1-10).
    """
    if not 1 <= limit <= MAX_RESULTS:
        raise ToolInputError(f"limit must be between 1 and {MAX_RESULTS}, got {limit}")
    if not query.strip():
        raise ToolInputError("query is empty")
    return [hit.model_dump() for hit in _index_of(ctx).search(query, limit)]


@tool
def read_document(ctx: Sandbox, doc_id: str) -> dict[str, Any]:
    """Read one document in full (by the id a search result gave).

    Args:
        doc_id: The document id, e.g. "sdk-changelog".
    """
    doc = _index_of(ctx).get(doc_id)
    if doc is None:
        raise ToolInputError(f"no document with id '{doc_id}' (search first to find ids)")
    text = doc.text
    if len(text) > MAX_DOCUMENT_CHARS:
        text = text[:MAX_DOCUMENT_CHARS] + f"... [truncated {len(doc.text) - MAX_DOCUMENT_CHARS}]"
    return {
        "id": doc.id,
        "title": doc.title,
        "version": doc.version,
        "date": doc.date.isoformat(),
        "text": text,
    }


SEARCH_TOOLS = (search_docs, read_document)


def _markdown_document(node: Path | Traversable) -> Document:
    text = _read(node)
    match = FRONT_MATTER.match(text)
    if match is None:
        raise CorpusError(f"{node}: no front matter (--- id/title/date --- at the top)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise CorpusError(f"{node}: front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise CorpusError(f"{node}: front matter must be a mapping (id, title, date)")
    return _document({**meta, "text": match.group(2).strip()}, f"{node}")


def _jsonl_documents(node: Path | Traversable) -> list[Document]:
    documents = []
    for number, line in enumerate(_read(node).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise CorpusError(f"{node}:{number}: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CorpusError(f"{node}:{number}: expected an object per line")
        documents.append(_document(data, f"{node}:{number}"))
    return documents


def _document(data: dict[str, Any], where: str) -> Document:
    if isinstance(data.get("version"), int | float):
        data = {**data, "version": str(data["version"])}
    try:
        return Document.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"]) or "(root)"
        label = f"document '{data['id']}'" if isinstance(data.get("id"), str) else "document"
        raise CorpusError(f"{where}: {label}: field '{field}': {error['msg']}") from None


def _read(node: Path | Traversable) -> str:
    try:
        return node.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{node}: cannot read: {exc}") from None
