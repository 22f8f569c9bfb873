"""The security hook: request.state.patient_restriction limits every search to a patient."""

from __future__ import annotations

import pytest
from starlette.middleware.base import BaseHTTPMiddleware

from codoc_fhir.app import create_app
from tests.conftest import make_settings
from tests.factories import make_patient, seed_procedure_context
from tests.fhir_client import FhirTestClient
from tests.search.helpers import at, fact, ids


class _RestrictFromHeader(BaseHTTPMiddleware):
    """Test-only stand-in for the auth layer: X-Test-Patient names the allowed patient."""

    async def dispatch(self, request, call_next):
        value = request.headers.get("x-test-patient")
        request.state.patient_restriction = int(value) if value else None
        return await call_next(request)


@pytest.fixture
def restricted(database_url, engine, client):
    app = create_app(make_settings(database_url))
    app.add_middleware(_RestrictFromHeader)
    with FhirTestClient(app) as test_client:
        yield test_client


def test_matches_includes_and_compartments_stay_within_the_patient(restricted, engine):
    context = seed_procedure_context(engine)
    other = make_patient(engine, lastname="Martin")
    mine = fact(
        engine,
        patient_num=context["patient"],
        when=at("2024-01-10T08:00:00Z"),
        department_num=context["department"],
    )
    fact(engine, patient_num=other, when=at("2024-01-11T08:00:00Z"))
    as_patient_1 = {"x-test-patient": str(context["patient"])}

    everything = restricted.get("/v4.3.0/Procedure").json()
    assert ids(everything) == ["1", "2"]
    bundle = restricted.get(
        "/v4.3.0/Procedure?_include=Procedure:subject&_include=Procedure:performer",
        headers=as_patient_1,
    ).json()
    assert ids(bundle) == [str(mine)]
    assert bundle["total"] == 1
    included = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    }
    assert included == {("Patient", "1"), ("Organization", "department-1")}
    assert (
        ids(restricted.get("/v4.3.0/Procedure?subject=Patient/2", headers=as_patient_1).json())
        == []
    )
    assert ids(restricted.get("/v4.3.0/Patient/2/Procedure", headers=as_patient_1).json()) == []
    assert ids(restricted.get("/v4.3.0/Patient", headers=as_patient_1).json()) == ["1"]
    revinclude = restricted.get(
        "/v4.3.0/Patient?_revinclude=Procedure:subject", headers={"x-test-patient": str(other)}
    ).json()
    assert ids(revinclude) == [str(other)]
    assert ids(revinclude, "include") == ["2"]
    # organisations hold no patient data: not restricted
    assert len(ids(restricted.get("/v4.3.0/Organization", headers=as_patient_1).json())) == 3
