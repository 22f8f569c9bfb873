"""The ASGI application for uvicorn/gunicorn workers: `codoc_fhir.asgi:app`."""

from codoc_fhir.app import create_app

app = create_app()
