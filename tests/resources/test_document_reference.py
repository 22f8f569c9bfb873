"""DocumentReference: api/documentreference.md and the document steps of the guides."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import (
    dwh_data,
    dwh_document,
    dwh_document_author,
    dwh_enrsem,
    dwh_text,
    dwh_thesaurus,
    dwh_thesaurus_data,
)
from tests.factories import (
    NOW,
    count_rows,
    make_department,
    make_patient,
    make_stay,
    make_unit,
)

DOCUMENTED = {
    "resourceType": "DocumentReference",
    "status": "current",
    "subject": {"reference": "Patient/1"},
    "date": "2024-01-15T10:00:00Z",
    "author": [
        {"display": "Dr. Smith"},
        {
            "reference": "Organization/department-2",
            "type": "https://hl7.org/fhir/R4B/organization.html",
            "display": "Emergency Department",
        },
    ],
    "content": [
        {
            "attachment": {
                "contentType": "text/html",
                "data": "PHA+Q2xpbmljYWwgUmVwb3J0PC9wPg==",
                "title": "Initial Report",
            }
        }
    ],
    "context": {"encounter": [{"reference": "Encounter/1"}]},
}

COMPLETE_HTML = """
<!DOCTYPE html>
<html>
<head><title>Consultation Report</title></head>
<body>
  <h1>Consultation Report</h1>
  <p><strong>Patient:</strong> John Smith</p>
  <p><strong>Date:</strong> 01/15/2024</p>
  <h2>Reason</h2>
  <p>Chest pain</p>
  <h2>Conclusion</h2>
  <p>No abnormality detected</p>
</body>
</html>
"""


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def with_content(body: dict, data: str, content_type: str = "text/html", **extra) -> dict:
    attachment = {"contentType": content_type, "data": data, **extra}
    return dict(body, content=[{"attachment": attachment}])


def stored(engine, table, column, num: int = 1):
    key = next(iter(table.primary_key.columns))
    with engine.connect() as conn:
        return conn.execute(select(table.c[column]).where(key == num)).scalar_one()


def plain_text(engine, num: int = 1) -> str:
    return stored(engine, dwh_text, "text", num)


@pytest.fixture
def context(engine):
    """Patient 1 with stay 1; department-1 (Cardiology) and department-2 (Emergency)."""
    cardiology = make_department(engine)
    emergency = make_department(engine, code="EMER", name="Emergency Department")
    patient = make_patient(engine)
    stay = make_stay(engine, patient_num=patient)
    return {"patient": patient, "stay": stay, "cardiology": cardiology, "emergency": emergency}


# --- the documented payloads -------------------------------------------------------------


def test_documented_create_answers_and_stores_the_document(client, context, engine):
    response = client.post("/v4.3.0/documentreference/", json=DOCUMENTED)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == "1"
    assert response.headers["location"].endswith("/v4.3.0/DocumentReference/1")
    assert created["identifier"] == [{"use": "official", "value": "1"}]
    assert created["status"] == "current"
    assert created["subject"] == {"reference": "Patient/1"}
    assert created["date"] == "2024-01-15T10:00:00Z"
    assert created["author"] == [
        {"display": "Dr. Smith"},
        {  # the reference's `type` is kept as sent (CONTRACT section 9)
            "reference": "Organization/department-2",
            "type": "https://hl7.org/fhir/R4B/organization.html",
            "display": "Emergency Department",
        },
    ]
    attachment = created["content"][0]["attachment"]
    assert attachment["contentType"] == "text/html"
    assert attachment["data"] == "PHA+Q2xpbmljYWwgUmVwb3J0PC9wPg=="
    assert attachment["title"] == "Initial Report"
    assert "size" not in attachment and "hash" not in attachment  # nothing added to what was sent
    assert created["context"] == {"encounter": [{"reference": "Encounter/1"}]}
    assert stored(engine, dwh_document, "author") == "Dr. Smith"
    assert stored(engine, dwh_document, "department_num") == 2
    assert stored(engine, dwh_document, "stay_num") == 1
    assert stored(engine, dwh_document, "displayed_text") == "<p>Clinical Report</p>"
    assert plain_text(engine) == "Clinical Report"
    with engine.connect() as conn:
        authors = conn.execute(
            select(
                dwh_document_author.c.author_display,
                dwh_document_author.c.org_level,
                dwh_document_author.c.org_num,
            ).order_by(dwh_document_author.c.author_order)
        ).all()
    assert [tuple(author) for author in authors] == [
        ("Dr. Smith", None, None),
        ("Emergency Department", "department", 2),
    ]


def test_documented_retrieve_and_decode(client, context):
    html = "<p>Consultation report</p>"
    client.post("/v4.3.0/documentreference/", json=with_content(DOCUMENTED, b64(html)))
    for path in ("/v4.3.0/documentreference/1/", "/v4.3.0/DocumentReference/1"):
        doc = client.get(path).json()
        assert base64.b64decode(doc["content"][0]["attachment"]["data"]).decode() == html


def test_documented_plain_text_document(client, context, engine):
    text = "Consultation report\n\nPatient seen on 01/15/2024..."
    body = with_content(DOCUMENTED, b64(text), "text/plain", title="Consultation report")
    response = client.post("/v4.3.0/documentreference/", json=body)
    assert response.status_code == 201, response.text
    attachment = response.json()["content"][0]["attachment"]
    assert attachment["contentType"] == "text/plain"
    assert base64.b64decode(attachment["data"]).decode() == text
    assert plain_text(engine) == text


def test_documented_complete_html_document(client, context, engine):
    body = with_content(DOCUMENTED, b64(COMPLETE_HTML))
    assert client.post("/v4.3.0/documentreference/", json=body).status_code == 201
    assert stored(engine, dwh_document, "displayed_text") == COMPLETE_HTML
    assert plain_text(engine) == (
        "Consultation Report\nConsultation Report\nPatient: John Smith\n"
        "Date: 01/15/2024\nReason\nChest pain\nConclusion\nNo abnormality detected"
    )


def test_documented_errors(client, context, engine):
    cases = [
        (with_content(DOCUMENTED, "not base64!"), "Invalid Base64 encoding in attachment.data"),
        (
            dict(DOCUMENTED, subject={"reference": "Patient/999"}),
            "Patient with ID 999 does not exist",
        ),
        (
            dict(DOCUMENTED, author=[{"reference": "Organization/999"}]),
            "Organization with ID 999 does not exist",
        ),
        (
            dict(DOCUMENTED, author=[{"reference": "Organization/department-999"}]),
            "Department with ID 999 does not exist",
        ),
    ]
    for body, message in cases:
        response = client.post("/v4.3.0/documentreference/", json=body)
        assert response.status_code == 400
        issue = response.json()["issue"][0]
        assert issue["severity"] == "error"
        assert issue["diagnostics"].startswith(message)
    assert count_rows(engine, dwh_document) == 0


def test_patient_record_guide_document_by_a_unit(client, engine):
    """guides/patient-record.md step 4 (author: the unit created in step 1) and step 6."""
    department = make_department(engine)
    make_unit(engine, department_num=department, code="CARDIO_A", name="Cardiology Unit A")
    patient_id = str(make_patient(engine, lastname="Smith", firstname="Emma Marie"))
    stay_id = str(make_stay(engine, patient_num=int(patient_id)))
    unit_id = "unit-1"
    html_content = """
    <h1>Admission Report</h1>
    <h2>Reason</h2>
    <p>Chest pain</p>
    <h2>Clinical Examination</h2>
    <p>Patient conscious, BP 140/90, HR 85</p>
    <h2>Diagnosis</h2>
    <p>Suspected unstable angina</p>
    """
    document = client.post(
        "/v4.3.0/documentreference/",
        json={
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": {"reference": f"Patient/{patient_id}"},
            "context": {"encounter": [{"reference": f"Encounter/{stay_id}"}]},
            "author": [
                {"display": "Dr. Dubois"},
                {"reference": f"Organization/{unit_id}", "display": "Cardiology A"},
            ],
            "date": "2024-11-05T09:30:00Z",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/html",
                        "data": b64(html_content),
                        "title": "Admission Report",
                    }
                }
            ],
        },
    ).json()
    document_data = client.get(f"/v4.3.0/documentreference/{document['id']}/").json()
    assert document_data["content"][0]["attachment"]["title"] == "Admission Report"
    assert document_data["author"][1] == {
        "reference": "Organization/unit-1",
        "display": "Cardiology Unit A",
    }
    assert stored(engine, dwh_document, "unit_num") == 1
    assert stored(engine, dwh_document, "department_num") == department
    assert "Suspected unstable angina" in plain_text(engine)
    # the complete script's document: no author, no title
    short = "<h1>Admission Report</h1><p>Chest pain</p>"
    response = client.post(
        "/v4.3.0/documentreference/",
        json={
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": {"reference": f"Patient/{patient_id}"},
            "context": {"encounter": [{"reference": f"Encounter/{stay_id}"}]},
            "date": "2024-11-05T09:30:00Z",
            "content": [{"attachment": {"contentType": "text/html", "data": b64(short)}}],
        },
    )
    assert response.status_code == 201
    assert "author" not in response.json()
    assert plain_text(engine, 2) == "Admission Report\nChest pain"


@pytest.mark.parametrize(
    ("title", "html", "date"),
    [
        ("Emergency Admission Report", "<h1>Emergency Admission</h1>", "2024-11-05T13:45:00Z"),
        ("Cardiology Report", "<h1>Cardiology Management</h1>", "2024-11-05T19:50:00Z"),
        ("Discharge Report", "<h1>Discharge Report</h1>", "2024-11-07T10:00:00Z"),
    ],
)
def test_patient_journey_guide_documents(client, engine, title, html, date):
    patient_id = make_patient(engine, lastname="Johnson", firstname="John")
    stay_id = make_stay(engine, patient_num=patient_id)
    doc = client.post(
        "/v4.3.0/documentreference/",
        json={
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": {"reference": f"Patient/{patient_id}"},
            "context": {"encounter": [{"reference": f"Encounter/{stay_id}"}]},
            "date": date,
            "content": [
                {"attachment": {"contentType": "text/html", "data": b64(html), "title": title}}
            ],
        },
    )
    assert doc.status_code == 201
    assert doc.json()["date"] == date
    assert doc.json()["content"][0]["attachment"]["title"] == title


# --- bytes and text ----------------------------------------------------------------------

UTF8_HTML = "<p>Fièvre à 39,5 °C — toux &amp; dyspnée ; œdème 😷</p>\r\n<p>Ligne 2</p>"
PLAIN = "Compte rendu : pas d'<anomalie> détectée.\nÉtat stable ✓\n"
LATIN1 = "Résumé : hémoglobine normale".encode("iso-8859-1")


@pytest.mark.parametrize(
    ("raw", "content_type", "text"),
    [
        (UTF8_HTML.encode(), "text/html", "Fièvre à 39,5 °C — toux & dyspnée ; œdème 😷\nLigne 2"),
        (PLAIN.encode(), "text/plain", PLAIN),
        (LATIN1, "text/plain; charset=iso-8859-1", "Résumé : hémoglobine normale"),
    ],
)
def test_bytes_survive_create_read_put_read(client, context, engine, raw, content_type, text):
    body = with_content(DOCUMENTED, b64(raw), content_type)
    created = client.post("/v4.3.0/documentreference/", json=body).json()
    read = client.get("/v4.3.0/documentreference/1/").json()
    put = client.put("/v4.3.0/documentreference/1/", json=read).json()
    again = client.get("/v4.3.0/documentreference/1/").json()
    for answer in (created, read, put, again):
        attachment = answer["content"][0]["attachment"]
        assert base64.b64decode(attachment["data"]) == raw
        assert attachment["contentType"] == content_type
    assert put["meta"]["versionId"] == "2"
    for answer in (created, read, put, again):
        answer.pop("meta")
    assert created == read == put == again
    assert bytes(stored(engine, dwh_document, "content_bytes")) == raw
    assert plain_text(engine) == text


def test_line_wrapped_base64_is_accepted(client, context):
    raw = ("<p>" + "x" * 120 + "</p>").encode()
    wrapped = base64.encodebytes(raw).decode()  # 76-character lines
    response = client.post("/v4.3.0/documentreference/", json=with_content(DOCUMENTED, wrapped))
    assert response.status_code == 201
    assert base64.b64decode(response.json()["content"][0]["attachment"]["data"]) == raw


def test_plain_text_strips_tags_and_unescapes_entities(client, context, engine):
    html = (
        "<html><head><style>p {color: red}</style><script>alert('x')</script></head>"
        "<body><p>Tension &lt; 12 &amp; fi&egrave;vre&nbsp;: <b>oui</b></p>"
        "<ul><li>Toux</li><li>Dyspn&#233;e</li></ul>Fin<br>ligne</body></html>"
    )
    client.post("/v4.3.0/documentreference/", json=with_content(DOCUMENTED, b64(html)))
    assert plain_text(engine) == "Tension < 12 & fièvre\xa0: oui\nToux\nDyspnée\nFin\nligne"


def test_put_and_patch_update_the_plain_text(client, context, engine):
    created = client.post("/v4.3.0/documentreference/", json=DOCUMENTED).json()
    created["content"][0]["attachment"]["data"] = b64("<p>Second <i>version</i></p>")
    assert client.put("/v4.3.0/documentreference/1/", json=created).status_code == 200
    assert plain_text(engine) == "Second version"
    content = [{"attachment": {"contentType": "text/plain", "data": b64("Third")}}]
    response = client.patch("/v4.3.0/documentreference/1/", json={"content": content})
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "3"
    assert response.json()["author"][0] == {"display": "Dr. Smith"}
    assert plain_text(engine) == "Third"
    assert count_rows(engine, dwh_text) == 1
    assert count_rows(engine, dwh_document_author) == 2


# --- other fields ------------------------------------------------------------------------


def test_identifier_type_status_and_authors_round_trip(client, context, engine):
    body = dict(
        DOCUMENTED,
        status="superseded",
        identifier=[{"system": "urn:his:doc", "value": "DOC-42"}],
        type={"coding": [{"code": "CR-CONSULT"}]},
        author=[
            {"display": "Dr. Smith"},
            {"display": "Dr. Jones"},
            {"reference": "Organization/department-1"},
        ],
    )
    created = client.post("/v4.3.0/documentreference/", json=body).json()
    assert created["identifier"][1] == {"system": "urn:his:doc", "value": "DOC-42"}
    assert created["status"] == "superseded"
    assert created["type"]["coding"][0]["code"] == "CR-CONSULT"
    assert [author.get("display") for author in created["author"]] == [
        "Dr. Smith",
        "Dr. Jones",
        "Cardiology Department",
    ]
    assert stored(engine, dwh_document, "author") == "Dr. Smith; Dr. Jones"
    assert stored(engine, dwh_document, "id_doc_source") == "DOC-42"
    assert stored(engine, dwh_document, "document_type") == "CR-CONSULT"
    assert stored(engine, dwh_document, "department_num") == 1
    again = client.put("/v4.3.0/documentreference/1/", json=created).json()
    created.pop("meta")
    again.pop("meta")
    assert again == created


def test_if_match_and_delete(client, context, engine):
    client.post("/v4.3.0/documentreference/", json=DOCUMENTED)
    stale = client.put(
        "/v4.3.0/documentreference/1/", json=DOCUMENTED, headers={"If-Match": 'W/"9"'}
    )
    assert stale.status_code == 412
    assert client.delete("/v4.3.0/documentreference/1/").status_code == 204
    assert client.get("/v4.3.0/documentreference/1/").status_code == 410
    for table in (dwh_document, dwh_text, dwh_document_author):
        assert count_rows(engine, table) == 0


def _phenotype(engine) -> None:
    with engine.begin() as conn:
        conn.execute(dwh_thesaurus.insert().values(thesaurus_code="Phenotypes", label="P"))
        conn.execute(
            dwh_thesaurus_data.insert().values(
                thesaurus_code="Phenotypes", concept_code="I10", concept_str="Hypertension"
            )
        )
        conn.execute(
            dwh_enrsem.insert().values(
                document_num=1,
                patient_num=1,
                thesaurus_data_num=1,
                thesaurus_code="Phenotypes",
                concept_str_found="hypertension",
            )
        )


def test_delete_blocked_by_phenotypes_and_facts(client, context, engine):
    client.post("/v4.3.0/documentreference/", json=DOCUMENTED)
    _phenotype(engine)
    with engine.begin() as conn:
        conn.execute(dwh_thesaurus.insert().values(thesaurus_code="Acte", label="Acts"))
        conn.execute(
            dwh_thesaurus_data.insert().values(
                thesaurus_code="Acte", concept_code="COLO", concept_str="Colonoscopy"
            )
        )
        conn.execute(
            dwh_data.insert().values(
                patient_num=1,
                thesaurus_data_num=2,
                thesaurus_code="Acte",
                document_num=1,
                document_date=NOW,
                start_date=NOW,
            )
        )
    response = client.delete("/v4.3.0/documentreference/1/")
    assert response.status_code == 409
    assert response.json()["issue"][0]["diagnostics"] == (
        "DocumentReference 1 is referenced by 1 Observation, 1 Procedure"
    )
    assert count_rows(engine, dwh_document) == 1
    assert count_rows(engine, dwh_text) == 1


def test_phenotypes_follow_the_document(client, context, engine):
    client.post("/v4.3.0/documentreference/", json=DOCUMENTED)
    _phenotype(engine)
    moved = dict(DOCUMENTED, date="2024-02-01T08:00:00+01:00")
    assert client.put("/v4.3.0/documentreference/1/", json=moved).status_code == 200
    phenotype = client.get("/v4.3.0/observation/phenotype/1/").json()
    assert phenotype["effectiveDateTime"] == "2024-02-01T07:00:00Z"
    other = make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    response = client.put(
        "/v4.3.0/documentreference/1/",
        json=dict(DOCUMENTED, subject={"reference": f"Patient/{other}"}, context=None),
    )
    assert response.status_code == 409
    assert stored(engine, dwh_document, "patient_num") == 1


# --- bad input -----------------------------------------------------------------------------


def _without(field: str) -> dict:
    return {name: value for name, value in DOCUMENTED.items() if name != field}


def _attachment(**changes) -> dict:
    attachment = dict(DOCUMENTED["content"][0]["attachment"], **changes)
    return dict(DOCUMENTED, content=[{"attachment": {k: v for k, v in attachment.items() if v}}])


BAD_INPUT = [
    (_without("status"), "required", "status"),
    (_without("subject"), "required", "subject"),
    (_without("date"), "required", "date"),
    (_without("content"), "required", "content"),
    (_attachment(contentType=None), "required", "contentType"),
    (_attachment(data=None), "required", "data"),
    (_attachment(data=""), "required", "data"),
    (_attachment(data="PHA"), "invalid", "Invalid Base64 encoding in attachment.data"),
    (_attachment(data="PHA+Q2xp_-=="), "invalid", "Invalid Base64 encoding"),
    (_attachment(contentType="application/pdf"), "invalid", "text/html, text/plain"),
    (_attachment(contentType="text/plain; charset=nope"), "invalid", "charset"),
    (_attachment(data=b64(b"\xff\xfe<p>")), "invalid", "utf-8"),
    (_attachment(data=b64(b"<p>a\x00b</p>")), "invalid", "NUL"),
    (_attachment(title="x" * 401), "invalid", "title"),
    (dict(DOCUMENTED, status="final"), "invalid", "status"),
    (dict(DOCUMENTED, date="15/01/2024"), "invalid", "date"),
    (dict(DOCUMENTED, subject={"reference": "Patient/999"}), "not-found", "Patient with ID 999"),
    (dict(DOCUMENTED, context={"encounter": [{"reference": "Encounter/999"}]}), "not-found", "999"),
    (
        dict(DOCUMENTED, context={"encounter": [{"reference": "Encounter/movement-9"}]}),
        "not-found",
        "Movement with ID 9",
    ),
    (dict(DOCUMENTED, author=[{"reference": "Organization/unit-5"}]), "not-found", "Unit"),
    (dict(DOCUMENTED, author=[{"type": "Practitioner"}]), "required", "author[0]"),
    (dict(DOCUMENTED, content=DOCUMENTED["content"] * 2), "invalid", "one content"),
    (dict(DOCUMENTED, identifier=[{"value": "x" * 301}]), "invalid", "identifier"),
    (dict(DOCUMENTED, resourceType="Observation"), "invalid", "resourceType"),
]


@pytest.mark.parametrize(("body", "code", "needle"), BAD_INPUT)
def test_bad_input_is_a_400_outcome_and_stores_nothing(client, context, engine, body, code, needle):
    response = client.post("/v4.3.0/documentreference/", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    for table in (dwh_document, dwh_text, dwh_document_author):
        assert count_rows(engine, table) == 0


@pytest.mark.parametrize(("body", "code", "needle"), BAD_INPUT[::3])
def test_bad_put_leaves_the_document_unchanged(client, context, engine, body, code, needle):
    before = client.post("/v4.3.0/documentreference/", json=DOCUMENTED).json()
    response = client.put("/v4.3.0/documentreference/1/", json=body)
    assert response.status_code == 400
    assert client.get("/v4.3.0/documentreference/1/").json() == before
    assert plain_text(engine) == "Clinical Report"
    assert count_rows(engine, dwh_document_author) == 2


def test_stay_of_another_patient_is_refused(client, context, engine):
    other = make_patient(engine, lastname="Other", ipp="IPP-OTHER")
    make_stay(engine, patient_num=other)
    body = dict(DOCUMENTED, context={"encounter": [{"reference": "Encounter/2"}]})
    response = client.post("/v4.3.0/documentreference/", json=body)
    assert response.status_code == 400
    assert "another patient" in response.json()["issue"][0]["diagnostics"]
    assert count_rows(engine, dwh_document) == 0
