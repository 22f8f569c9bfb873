"""`DocumentReference?_content=`: full-text search, both backends."""

from __future__ import annotations

import pytest

from codoc_fhir.search.fulltext import fts5_query, parse
from tests.factories import make_document, make_patient
from tests.research.helpers import BASE, create_document, create_patient, document_body

TEXTS = {
    "fever": "Patient fébrile : FIÈVRE à 39 et toux sèche.",
    "cough": "Toux chronique sans fièvre, insuffisance cardiaque connue.",
    "heart": "Insuffisance rénale. Cardiaque stable.",
    "none": "Compte rendu opératoire sans particularité.",
}


@pytest.fixture
def documents(client):
    patient = create_patient(client)
    other = create_patient(client, "Autre")
    ids = {name: create_document(client, patient, text) for name, text in TEXTS.items()}
    ids["other"] = create_document(client, other, "Fièvre isolée.")
    return client, patient, ids


def found(client, query: str) -> set[str]:
    answer = client.get(f"{BASE}/DocumentReference?{query}")
    assert answer.status_code == 200, answer.text
    return {entry["resource"]["id"] for entry in answer.json().get("entry", [])}


def test_web_search_syntax(documents):
    client, _, ids = documents
    assert found(client, "_content=fievre") == {ids["fever"], ids["cough"], ids["other"]}
    assert found(client, "_content=FIÈVRE toux") == {ids["fever"], ids["cough"]}
    phrase = found(client, '_content="insuffisance cardiaque"')
    assert phrase == {ids["cough"]}  # "heart" has both words, not the phrase
    assert found(client, "_content=insuffisance cardiaque") == {ids["cough"], ids["heart"]}
    assert found(client, "_content=opératoire OR rénale") == {ids["none"], ids["heart"]}
    assert found(client, "_content=fièvre -toux") == {ids["other"]}
    assert found(client, "_content=absent") == set()


def test_combines_with_other_parameters_and_pages(documents):
    client, patient, ids = documents
    query = f"_content=fièvre&subject=Patient/{patient}"
    assert found(client, query) == {ids["fever"], ids["cough"]}
    first = client.get(f"{BASE}/DocumentReference?{query}&_count=1").json()
    assert len(first["entry"]) == 1
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(next_url).json()
    pages = {first["entry"][0]["resource"]["id"], second["entry"][0]["resource"]["id"]}
    assert pages == {ids["fever"], ids["cough"]}


def test_kept_in_step_with_writes(documents, engine):
    client, patient, ids = documents
    body = document_body(patient, "Désormais une pneumopathie.")
    answer = client.put(
        f"{BASE}/DocumentReference/{ids['fever']}", json={**body, "id": ids["fever"]}
    )
    assert answer.status_code == 200, answer.text
    assert found(client, "_content=pneumopathie") == {ids["fever"]}
    assert ids["fever"] not in found(client, "_content=toux")
    assert client.delete(f"{BASE}/DocumentReference/{ids['none']}").status_code == 204
    assert found(client, "_content=opératoire") == set()
    # rows written by other means than the API (import, SQL) are indexed as well
    written = make_document(engine, patient_num=make_patient(engine), text="Épilepsie connue")
    assert found(client, "_content=epilepsie") == {str(written)}


def test_queries_with_nothing_to_find_are_refused(documents):
    client, _, _ = documents
    for query in ("-toux", '""', "OR", "!!!"):
        answer = client.get(f"{BASE}/DocumentReference?_content={query}")
        assert answer.status_code == 400, query
        assert "needs at least one word" in answer.text


def test_translation_to_fts5():
    query = parse('toux "insuffisance cardiaque" fièvre OR pyrexie -asthme')
    assert query.groups == (("toux",), ("insuffisance cardiaque",), ("fièvre", "pyrexie"))
    assert query.excluded == ("asthme",)
    assert fts5_query(query) == (
        '(("toux") AND ("insuffisance cardiaque") AND ("fièvre" OR "pyrexie")) NOT "asthme"'
    )
    assert fts5_query(parse('say "a ""b"')) == '(("say") AND ("a ") AND ("b"))'
