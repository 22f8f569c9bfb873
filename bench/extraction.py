"""Phenotype extraction throughput: documents of ~2 KB per second, thesaurus of 1,000
concepts (16 real ones, the rest made-up two-word names). Each note mixes sentences of the
annotated corpus (30 %, nearly all naming concepts), sentences naming none (vital signs,
treatment, plan: 70 %) and now and then a made-up concept.

    .venv/bin/python bench/extraction.py [--documents 2000] [--language french]

Prints and writes bench/results/extraction.json: the pipeline build time, the NLP-only
rate, and the end-to-end rate of `extract_batches` (read text, NLP, store rows, commit)
on a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from codoc_fhir.research import extraction
from codoc_fhir.research.nlp import Concept, Extractor
from codoc_fhir.warehouse.db import make_engine, migrate
from codoc_fhir.warehouse.schema import (
    dwh_document,
    dwh_patient,
    dwh_text,
    dwh_thesaurus,
    dwh_thesaurus_data,
)

HERE = Path(__file__).parent
CORPUS = HERE.parent / "tests" / "research"
# Sentences naming no concept: most of a real note (vital signs, treatment, plan).
NEUTRAL = {
    "french": [
        "Tension artérielle 128/76 mmHg, fréquence cardiaque 72/min, saturation 97 % en air.",
        "Traitement habituel poursuivi sans modification.",
        "Le bilan biologique montre une créatinine à 85 µmol/L et une CRP à 4 mg/L.",
        "Retour à domicile prévu en fin de semaine avec une infirmière à domicile.",
        "Rendez-vous de consultation dans trois mois avec le médecin traitant.",
        "Examen clinique : abdomen souple, dépressible et indolore.",
        "La patiente vit seule au troisième étage avec ascenseur.",
        "Kinésithérapie respiratoire quotidienne pendant l'hospitalisation.",
    ],
    "english": [
        "Blood pressure 128/76 mmHg, heart rate 72/min, oxygen saturation 97% on room air.",
        "Usual treatment continued without change.",
        "Labs show a creatinine of 85 umol/L and a CRP of 4 mg/L.",
        "Discharge home planned at the end of the week with a visiting nurse.",
        "Follow-up appointment in three months with the primary care physician.",
        "Physical exam: abdomen soft, non-tender.",
        "The patient lives alone on the third floor with an elevator.",
        "Daily chest physiotherapy during the stay.",
    ],
}
SHARE_NAMING = 0.3  # share of the sentences taken from the annotated corpus
SYLLABLES = ["ca", "lo", "mi", "ne", "ti", "ra", "pho", "gre", "su", "ve", "dra", "ki"]


def made_up_word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 4)))


def thesaurus(language: str, size: int, rng: random.Random) -> list[Concept]:
    rows = json.loads((CORPUS / "thesaurus.json").read_text())
    concepts = [Concept(n, row["code"], (row[language],)) for n, row in enumerate(rows, 1)]
    while len(concepts) < size:
        name = f"{made_up_word(rng)} {made_up_word(rng)}"
        concepts.append(Concept(len(concepts) + 1, f"C{len(concepts) + 1}", (name,)))
    return concepts


def documents(language: str, count: int, concepts: list[Concept], rng: random.Random) -> list:
    short = "fr" if language == "french" else "en"
    lines = (CORPUS / f"corpus_{short}.jsonl").read_text(encoding="utf-8").splitlines()
    sentences = [json.loads(line)["text"] for line in lines]
    texts = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(part) + 1 for part in parts) < 2000:
            if rng.random() < SHARE_NAMING:
                parts.append(rng.choice(sentences))
            else:
                parts.append(rng.choice(NEUTRAL[language]))
            if rng.random() < 0.05:
                parts.append(f"Notion de {rng.choice(concepts).terms[0]}.")
        texts.append(" ".join(parts))
    return texts


def fill(url: str, concepts: list[Concept], texts: list[str]) -> None:
    migrate(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(dwh_thesaurus), [{"thesaurus_code": "Bench", "label": "Bench"}])
        conn.execute(insert(dwh_thesaurus_data), [
            {"thesaurus_data_num": c.num, "thesaurus_code": "Bench", "concept_code": c.code,
             "concept_str": c.terms[0]} for c in concepts
        ])  # fmt: skip
        conn.execute(insert(dwh_patient), [{"patient_num": 1, "lastname": "Bench"}])
        conn.execute(insert(dwh_document), [
            {"document_num": n, "patient_num": 1, "document_date": now, "displayed_text": t}
            for n, t in enumerate(texts, 1)
        ])  # fmt: skip
        conn.execute(insert(dwh_text), [
            {"document_num": n, "patient_num": 1, "text": t, "update_date": now}
            for n, t in enumerate(texts, 1)
        ])  # fmt: skip
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--concepts", type=int, default=1000)
    parser.add_argument("--language", default="french", choices=["french", "english"])
    args = parser.parse_args()
    rng = random.Random(12)
    concepts = thesaurus(args.language, args.concepts, rng)
    texts = documents(args.language, args.documents, concepts, rng)
    started = time.perf_counter()
    extractor = Extractor(concepts, args.language)
    build = time.perf_counter() - started
    started = time.perf_counter()
    found = sum(len(extractor.find(text)) for text in texts)
    nlp_rate = len(texts) / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        fill(url, concepts, texts)
        engine = make_engine(url)
        selection = extraction.Selection("Bench")
        list(extraction.extract_batches(engine, selection, args.language))  # warm the cache
        selection = extraction.Selection("Bench", redo=True)
        started = time.perf_counter()
        stored = sum(len(nums) for _, nums in extraction.extract_batches(
            engine, selection, args.language))  # fmt: skip
        end_to_end = len(texts) / (time.perf_counter() - started)
        engine.dispose()
    result = {
        "documents": len(texts),
        "mean_document_bytes": round(sum(len(t.encode()) for t in texts) / len(texts)),
        "concepts": len(concepts),
        "language": args.language,
        "pipeline_build_seconds": round(build, 2),
        "nlp_documents_per_second": round(nlp_rate, 1),
        "end_to_end_documents_per_second": round(end_to_end, 1),
        "findings": found,
        "rows_stored": stored,
    }
    print(json.dumps(result, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"extraction-{args.language}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
