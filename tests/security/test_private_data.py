"""What must stay private (CONTRACT 8): export files on disk, SQL parameters in errors."""

from __future__ import annotations

import stat
import uuid

import pytest
from sqlalchemy.exc import IntegrityError

from codoc_fhir.app import create_app
from codoc_fhir.warehouse.schema import fhir_rate_limit
from tests.api.test_bulk_export import kick_off, seed, wait_for_manifest
from tests.conftest import make_settings


def test_export_files_are_readable_by_the_server_user_only(make_client, engine, tmp_path):
    root = tmp_path / "exports"
    client = make_client(CODOC_EXPORT_DIR=str(root))
    seed(engine, client)
    manifest = wait_for_manifest(client, kick_off(client))
    assert manifest["output"]
    files = [path for path in root.rglob("*") if path.is_file()]
    directories = [root, *(path for path in root.rglob("*") if path.is_dir())]
    assert len(files) == len(manifest["output"])
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in directories:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_sql_errors_never_show_bound_parameters(database_url, engine):
    """The message of a database error (what a traceback in the server log prints) names
    the statement, never the values of the request that were bound to it."""
    app_engine = create_app(make_settings(database_url)).state.server.engine
    marker = f"secret-{uuid.uuid4().hex}"
    row = {"bucket_key": marker, "window_start": 1, "request_count": 1}
    with app_engine.begin() as conn:
        conn.execute(fhir_rate_limit.insert().values(row))
    try:
        with pytest.raises(IntegrityError) as raised, app_engine.begin() as conn:
            conn.execute(fhir_rate_limit.insert().values(row))
        assert marker not in str(raised.value)
        assert "INSERT INTO fhir_rate_limit" in str(raised.value)
    finally:
        with engine.begin() as conn:
            conn.execute(fhir_rate_limit.delete().where(fhir_rate_limit.c.bucket_key == marker))
        app_engine.dispose()
