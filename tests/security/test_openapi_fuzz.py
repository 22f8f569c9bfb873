"""A bounded schemathesis run against the server's own OpenAPI schema: no 5xx, ever.

Each documented operation gets a few generated requests (valid and invalid bodies,
parameters and ids); the whole run stays well under two minutes.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from codoc_fhir.app import create_app
from tests.conftest import make_settings
from tests.factories import seed_procedure_context

EXAMPLES_PER_OPERATION = 4


def _server_errors(operation) -> list[str]:
    errors: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case) -> None:
        response = case.call()
        if response.status_code >= 500:
            errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}")

    run()
    return errors


def test_no_server_error_on_any_operation(make_client, database_url, engine):
    seed_procedure_context(engine)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(make_settings(database_url))
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any("/procedure/" in operation.path for operation in operations)
    errors = [error for operation in operations for error in _server_errors(operation)]
    assert errors == []
