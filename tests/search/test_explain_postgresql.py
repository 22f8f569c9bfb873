"""EXPLAIN of the main searches on a PostgreSQL warehouse of 40k facts: indexes are used.

Runs on the PostgreSQL backend only; prints each plan (pytest -s to see them).
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

PATIENTS = 5000
FACTS = 20_000

FILL = [
    f"""INSERT INTO dwh_patient (lastname, firstname, sex, birth_date, update_date, row_version)
        SELECT 'Name' || n, 'First' || n, CASE WHEN n % 2 = 0 THEN 'F' ELSE 'M' END,
               timestamp '1950-01-01' + n * interval '40 days', now(), 1
        FROM generate_series(1, {PATIENTS}) AS n""",
    """INSERT INTO dwh_patient_ipphist (patient_num, hospital_patient_id, origin_patient_id,
                                        master_patient_id, update_date)
        SELECT patient_num, 'IPP' || patient_num, 'HIS', true, now() FROM dwh_patient""",
    """INSERT INTO dwh_thesaurus (thesaurus_code, name, label, update_date, row_version)
        VALUES ('Acte', 'Acte', 'Acte', now(), 1),
               ('Biologie', 'Biologie', 'Biologie', now(), 1)""",
    """INSERT INTO dwh_thesaurus_data (thesaurus_code, concept_code, concept_str, update_date,
                                       row_version)
        SELECT t, 'C' || n, 'Concept ' || n, now(), 1
        FROM generate_series(1, 50) AS n, (VALUES ('Acte'), ('Biologie')) AS v(t)""",
    f"""INSERT INTO dwh_data (patient_num, thesaurus_data_num, thesaurus_code, document_date,
                             start_date, id_data_source, val_numeric, update_date, row_version)
        SELECT 1 + n % {PATIENTS}, c.thesaurus_data_num, c.thesaurus_code,
               timestamp '2020-01-01' + n * interval '1 hour',
               timestamp '2020-01-01' + n * interval '1 hour',
               c.thesaurus_code || n, n % 300, now(), 1
        FROM generate_series(1, {FACTS}) AS n
        JOIN dwh_thesaurus_data c
          ON c.concept_code = 'C' || (1 + n % 50)""",
    "ANALYZE",
]

SUBJECT_INDEX = ("ix_dwh_data_patient_thesaurus_start",)
SEARCHES = {  # url, the indexes one of which the page query must use
    "by subject": ("/v4.3.0/Procedure?subject=Patient/7", SUBJECT_INDEX),
    "by subject and date": (
        "/v4.3.0/Procedure?subject=Patient/7&date=ge2021-01&date=lt2021-07",
        SUBJECT_INDEX,
    ),
    "by code and date": (
        "/v4.3.0/Procedure?code=C7&date=2021-03&_sort=date",
        ("ix_dwh_data_concept_start",),
    ),
    "by identifier": ("/v4.3.0/Procedure?identifier=Acte1234", ("ix_dwh_data_id_source",)),
    "lab by subject, date sorted": (
        "/v4.3.0/Observation?subject=Patient/9&_sort=-date",
        SUBJECT_INDEX,
    ),
    "patient by identifier": (
        "/v4.3.0/Patient?identifier=HIS|IPP42",
        (
            "ix_dwh_patient_ipphist_value",
            "uq_dwh_patient_ipphist_origin_patient_id_hospital_patient_id",
        ),
    ),
    "chained: procedures of the patient with an IPP": (
        "/v4.3.0/Procedure?subject:Patient.identifier=HIS|IPP42",
        SUBJECT_INDEX,
    ),
    "chained: procedures of patients by family name": (
        "/v4.3.0/Procedure?subject.family=name42",
        SUBJECT_INDEX,
    ),
    "reverse chained: patients with a procedure of a code": (
        "/v4.3.0/Patient?_has:Procedure:subject:code=C7",
        ("ix_dwh_data_concept_start", "pk_dwh_patient"),
    ),
}
INDEXED = ("Index Scan", "Bitmap Index Scan", "Index Only Scan")


@pytest.fixture
def warehouse(make_client, engine):
    """The generic search (fast paths off: the fast search's statement runs on its own
    pool, where these plans are not captured; it uses the same WHERE clauses)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("EXPLAIN checks run on PostgreSQL only")
    with engine.begin() as conn:
        for statement in FILL:
            conn.execute(text(statement))
    return make_client(CODOC_FAST_READ="false")


def _captured_plans(client, url: str) -> list[str]:
    """The EXPLAIN of every SELECT the server runs to answer `url`."""
    server_engine = client.app.state.server.engine
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(server_engine, "before_cursor_execute", capture)
    try:
        response = client.get(url)
    finally:
        event.remove(server_engine, "before_cursor_execute", capture)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:  # a parameter its resource does not declare yet
        pytest.skip(response.json()["issue"][0]["diagnostics"])
    plans = []
    with server_engine.connect() as conn:
        for statement, parameters in statements:
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
            plans.append("\n".join(rows))
    return plans


def _kept_code_lookup(plan: str) -> bool:
    """The lookup of kept codes (fhir_token, before the search's own query): it names the
    table it looks for in a filter, and reads no warehouse table."""
    return "on fhir_token" in plan and " on dwh_" not in plan


@pytest.mark.parametrize("name", list(SEARCHES))
def test_main_searches_use_indexes(warehouse, name):
    url, indexes = SEARCHES[name]
    plans = _captured_plans(warehouse, url)
    searched = [
        plan
        for plan in plans
        if ("dwh_data" in plan or "dwh_patient" in plan) and not _kept_code_lookup(plan)
    ]
    print(f"\n=== {name}: {url}")
    for plan in searched:
        print(plan, "\n---")
    assert searched
    for plan in searched:
        assert any(marker in plan for marker in INDEXED), plan
        assert "Seq Scan on dwh_data" not in plan, plan
    page = next(plan for plan in searched if plan.startswith("Limit"))
    assert any(index in page for index in indexes), page


OTHER_SEARCHES = [
    "/v4.3.0/Procedure?subject=Patient/7&_sort=-date&_include=Procedure:subject",
    "/v4.3.0/Procedure?date=2021-03-05&_sort=date",
    "/v4.3.0/Procedure?_lastUpdated=ge2020-01-01&_count=5",
    "/v4.3.0/Observation?code=C7&value-quantity=gt100&_count=5",
    "/v4.3.0/Encounter?subject=Patient/7&date=ge2021",
    "/v4.3.0/DocumentReference?subject=Patient/7&date=2021",
    "/v4.3.0/Patient?family=name12&gender=female",
    "/v4.3.0/Patient?birthdate=1960&_sort=birthdate",
    "/v4.3.0/Patient/7/Procedure?_summary=count",
]


@pytest.mark.parametrize("url", OTHER_SEARCHES)
def test_other_searches_plans_are_printed(warehouse, url):
    """The plans of the other searches, for reading (pytest -s); they must answer."""
    plans = _captured_plans(warehouse, url)
    print(f"\n=== {url}")
    for plan in plans:
        print(plan, "\n---")
    assert plans
