"""Built-in phenotype extraction: documents' text in, phenotype rows (`dwh_enrsem`) out.

For one document and one thesaurus: the cached edsnlp extractor of that thesaurus version
finds the concepts; the rows extraction stored before for that pair (`extracted` true) are
replaced by one row per concept and qualifier set found; rows posted by clients are never
touched. `dwh_enrsem_extraction` records which text (its `dwh_text.update_date`) each
document was last extracted from, so a run over many documents skips those already done
(resumable) and redoes those whose text changed since.

tf-idf: tf is the concept's share of the concept mentions of the document, idf is
log((1 + documents with text) / (1 + documents where the concept was found)) + 1, the
smoothed form, so a concept found everywhere still weighs a little.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.errors import Invalid, NotFound
from codoc_fhir.research.nlp import Concept, Extractor, Finding, cached_extractor
from codoc_fhir.resources.observation_phenotype import (
    AFFIRMED,
    FAMILY_TEXT,
    NEGATED,
    PATIENT_TEXT,
)
from codoc_fhir.warehouse.db import write_transaction
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_enrsem,
    dwh_enrsem_extraction,
    dwh_text,
    dwh_thesaurus,
    dwh_thesaurus_data,
)

FOUND_LENGTH = 2000  # dwh_enrsem.concept_str_found


@dataclass(frozen=True)
class Document:
    """What extraction reads of a document."""

    num: int
    patient_num: int
    document_date: datetime | None
    text: str
    text_date: datetime | None


# --- the thesaurus ----------------------------------------------------------------------


def check_thesaurus(conn: Connection, thesaurus_code: str) -> None:
    """400 for a thesaurus that does not exist."""
    query = select(dwh_thesaurus.c.thesaurus_num).where(
        dwh_thesaurus.c.thesaurus_code == thesaurus_code
    )
    if conn.execute(query).first() is None:
        raise Invalid(f"Thesaurus {thesaurus_code!r} does not exist", expression=["thesaurus"])


def thesaurus_version(conn: Connection, thesaurus_code: str) -> tuple[Any, ...]:
    """What changes whenever a concept is added, edited or removed: the cache key part."""
    concept = dwh_thesaurus_data.c
    query = select(
        func.count(), func.max(concept.thesaurus_data_num), func.max(concept.update_date)
    ).where(concept.thesaurus_code == thesaurus_code)
    return tuple(conn.execute(query).one())


def load_concepts(conn: Connection, thesaurus_code: str) -> list[Concept]:
    """Every concept of the thesaurus, named by its display (`concept_str`) and its
    designations (synonyms, one a line in `designation_text`)."""
    concept = dwh_thesaurus_data.c
    query = select(
        concept.thesaurus_data_num,
        concept.concept_code,
        concept.concept_str,
        concept.designation_text,
    ).where(concept.thesaurus_code == thesaurus_code)
    return [
        Concept(num, code, (label, *_lines(synonyms)))
        for num, code, label, synonyms in conn.execute(query)
    ]


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def extractor_for(conn: Connection, thesaurus_code: str, language: str) -> Extractor:
    """The cached extractor of the thesaurus's current version."""
    key = (str(conn.engine.url), thesaurus_code, language, thesaurus_version(conn, thesaurus_code))
    return cached_extractor(key, lambda: load_concepts(conn, thesaurus_code), language)


# --- documents --------------------------------------------------------------------------


def _document_query() -> Any:
    return select(
        dwh_document.c.document_num,
        dwh_document.c.patient_num,
        dwh_document.c.document_date,
        dwh_text.c.text,
        dwh_text.c.update_date,
    ).join(dwh_text, dwh_text.c.document_num == dwh_document.c.document_num)


def _document(row: Any) -> Document:
    return Document(row[0], row[1], row[2], row[3], row[4])


def fetch_document(conn: Connection, num: int) -> Document:
    row = conn.execute(_document_query().where(dwh_document.c.document_num == num)).first()
    if row is None:
        raise NotFound(f"DocumentReference with ID {num} does not exist")
    return _document(row)


@dataclass(frozen=True)
class Selection:
    """Which documents a run over many reads."""

    thesaurus_code: str
    patient: int | None = None
    since: datetime | None = None
    redo: bool = False  # also documents already extracted from their current text


def _selection_clause(selection: Selection) -> Any:
    clauses = []
    if selection.patient is not None:
        clauses.append(dwh_document.c.patient_num == selection.patient)
    if selection.since is not None:
        clauses.append(
            or_(
                dwh_text.c.update_date >= selection.since,
                dwh_document.c.update_date >= selection.since,
            )
        )
    if not selection.redo:
        done = select(dwh_enrsem_extraction.c.document_num).where(
            dwh_enrsem_extraction.c.thesaurus_code == selection.thesaurus_code,
            dwh_enrsem_extraction.c.document_num == dwh_document.c.document_num,
            or_(
                dwh_enrsem_extraction.c.text_date == dwh_text.c.update_date,
                and_(dwh_enrsem_extraction.c.text_date.is_(None), dwh_text.c.update_date.is_(None)),
            ),
        )
        clauses.append(~done.exists())
    return and_(*clauses) if clauses else None


def count_selected(conn: Connection, selection: Selection) -> int:
    query = select(func.count()).select_from(
        dwh_document.join(dwh_text, dwh_text.c.document_num == dwh_document.c.document_num)
    )
    clause = _selection_clause(selection)
    return int(conn.execute(query if clause is None else query.where(clause)).scalar_one())


def selected_documents(conn: Connection, selection: Selection, after: int, limit: int) -> list:
    """Up to `limit` selected documents with a number above `after`, in number order."""
    query = _document_query().where(dwh_document.c.document_num > after)
    clause = _selection_clause(selection)
    if clause is not None:
        query = query.where(clause)
    rows = conn.execute(query.order_by(dwh_document.c.document_num).limit(limit))
    return [_document(row) for row in rows]


# --- storing ----------------------------------------------------------------------------


def _idf(conn: Connection, thesaurus_code: str, concept_nums: Sequence[int]) -> dict[int, float]:
    """Smoothed idf of each concept over the documents with text."""
    if not concept_nums:
        return {}
    documents = conn.execute(select(func.count()).select_from(dwh_text)).scalar_one()
    query = (
        select(dwh_enrsem.c.thesaurus_data_num, func.count(dwh_enrsem.c.document_num.distinct()))
        .where(
            dwh_enrsem.c.thesaurus_code == thesaurus_code,
            dwh_enrsem.c.thesaurus_data_num.in_(concept_nums),
        )
        .group_by(dwh_enrsem.c.thesaurus_data_num)
    )
    found: dict[int, int] = dict(conn.execute(query).tuples().all())
    return {num: math.log((1 + documents) / (1 + found.get(num, 0))) + 1 for num in concept_nums}


def _rows(
    document: Document, thesaurus_code: str, findings: Sequence[Finding], idf: dict[int, float]
) -> list[dict[str, Any]]:
    per_concept: dict[int, int] = {}
    for finding in findings:
        per_concept[finding.concept_num] = per_concept.get(finding.concept_num, 0) + finding.count
    total = sum(per_concept.values())
    now = utc_now()
    return [
        {
            "document_num": document.num,
            "patient_num": document.patient_num,
            "thesaurus_data_num": finding.concept_num,
            "thesaurus_code": thesaurus_code,
            "concept_str_found": finding.text[:FOUND_LENGTH],
            "certainty": NEGATED if finding.negation else AFFIRMED,
            "context": FAMILY_TEXT if finding.family else PATIENT_TEXT,
            "hypothesis": finding.hypothesis,
            "count_concept": per_concept[finding.concept_num],
            "count_concept_str_found": finding.count,
            "tfidf_code_document": round(
                per_concept[finding.concept_num] / total * idf[finding.concept_num], 6
            ),
            "phenotype": True,
            "document_date": document.document_date,
            "extracted": True,
            "update_date": now,
            "row_version": 1,
        }
        for finding in findings
    ]


def store_all(
    conn: Connection, thesaurus_code: str, found: Sequence[tuple[Document, list[Finding]]]
) -> list[int]:
    """Replace the extraction rows of each (document, thesaurus) by the new findings, a
    constant number of statements for the whole batch; the new rows' numbers. One idf
    computation serves the batch (document frequencies as they were before it)."""
    if not found:
        return []
    document_nums = [document.num for document, _ in found]
    conn.execute(
        dwh_enrsem.delete().where(
            dwh_enrsem.c.document_num.in_(document_nums),
            dwh_enrsem.c.thesaurus_code == thesaurus_code,
            dwh_enrsem.c.extracted.is_(True),
        )
    )
    state = dwh_enrsem_extraction
    conn.execute(
        state.delete().where(
            state.c.document_num.in_(document_nums), state.c.thesaurus_code == thesaurus_code
        )
    )
    now = utc_now()
    conn.execute(
        state.insert(),
        [
            {"document_num": document.num, "thesaurus_code": thesaurus_code,
             "text_date": document.text_date, "extract_date": now}
            for document, _ in found
        ],
    )  # fmt: skip
    concept_nums = sorted({f.concept_num for _, findings in found for f in findings})
    idf = _idf(conn, thesaurus_code, concept_nums)
    rows = [
        row
        for document, findings in found
        for row in _rows(document, thesaurus_code, findings, idf)
    ]
    if not rows:
        return []
    inserted = conn.execute(dwh_enrsem.insert().returning(dwh_enrsem.c.enrsem_num), rows)
    return sorted(inserted.scalars().all())


def extract_document(
    conn: Connection, document_num: int, thesaurus_code: str, language: str
) -> list[int]:
    """Extract one document (in the caller's transaction); the stored rows' numbers."""
    check_thesaurus(conn, thesaurus_code)
    document = fetch_document(conn, document_num)
    extractor = extractor_for(conn, thesaurus_code, language)
    return store_all(conn, thesaurus_code, [(document, extractor.find(document.text))])


def extract_batches(
    engine: Any, selection: Selection, language: str, batch_size: int = 200
) -> Iterator[tuple[int, list[int]]]:
    """Extract every selected document, one transaction per batch (a stopped run keeps
    what it committed and resumes after it); yields (documents done, row numbers)."""
    with engine.connect() as conn:
        check_thesaurus(conn, selection.thesaurus_code)
    after = 0
    while True:
        with write_transaction(engine) as conn:
            documents = selected_documents(conn, selection, after, batch_size)
            if not documents:
                return
            extractor = extractor_for(conn, selection.thesaurus_code, language)
            found = [(document, extractor.find(document.text)) for document in documents]
            nums = store_all(conn, selection.thesaurus_code, found)
        after = documents[-1].num
        yield len(documents), nums
