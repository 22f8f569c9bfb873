"""The `codoc-fhir` command: serve, migrate, demo, access-log."""

from __future__ import annotations

import argparse
import os
import sys

from codoc_fhir.config import get_settings


def _serve(args: argparse.Namespace) -> None:
    from codoc_fhir.warehouse.db import migrate

    settings = get_settings()
    migrate(settings.database_url)
    if args.workers > 1:
        from gunicorn.app.wsgiapp import run

        sys.argv = [
            "gunicorn",
            "codoc_fhir.asgi:app",
            "--worker-class",
            "uvicorn.workers.UvicornWorker",
            "--workers",
            str(args.workers),
            "--bind",
            f"{args.host}:{args.port}",
        ]
        run()
        return
    import uvicorn

    uvicorn.run("codoc_fhir.asgi:app", host=args.host, port=args.port, log_level=args.log_level)


def _migrate(_args: argparse.Namespace) -> None:
    from codoc_fhir.warehouse.db import migrate

    migrate(get_settings().database_url)
    print("database is at the latest schema")


def _demo(_args: argparse.Namespace) -> None:
    from codoc_fhir.demo import load_demo
    from codoc_fhir.warehouse.db import migrate

    settings = get_settings()
    migrate(settings.database_url)
    print(load_demo(settings))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="codoc-fhir", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply migrations, then serve the API")
    serve.add_argument("--host", default=os.environ.get("CODOC_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CODOC_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=_serve)
    commands.add_parser("migrate", help="bring the database to the latest schema").set_defaults(
        handler=_migrate
    )
    commands.add_parser("demo", help="load the demo data set (idempotent)").set_defaults(
        handler=_demo
    )
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
