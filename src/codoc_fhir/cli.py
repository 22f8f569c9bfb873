"""The `codoc-fhir` command: serve, migrate, demo, import, access-log, extract."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta

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


def _import(args: argparse.Namespace) -> None:
    """Bulk import of NDJSON and Bundle files (docs/IMPORT.md); exits 1 on failures."""
    from pathlib import Path

    from codoc_fhir.bulk_import import ImportOptions, run_import

    settings = get_settings()
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    options = ImportOptions(
        batch_size=args.batch_size,
        continue_on_error=args.continue_on_error,
        errors_path=Path(args.errors) if args.errors else None,
        quiet=args.quiet,
    )
    status = run_import(settings, [Path(name) for name in args.files], options)
    if status:
        raise SystemExit(status)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return int(text)


def _since(text: str) -> datetime:
    """`2024-05-01`, `2024-05-01T10:00Z` or a duration back from now: `30m`, `2h`, `7d`."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a date or a duration: {text!r}") from error
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _access_log(args: argparse.Namespace) -> None:
    """Print access log rows, newest first, as lines or JSON lines."""
    import json

    from sqlalchemy import select

    from codoc_fhir.warehouse.db import make_engine
    from codoc_fhir.warehouse.schema import fhir_access_log as log

    query = select(log).order_by(log.c.start_date.desc(), log.c.access_log_num.desc())
    if args.since:
        query = query.where(log.c.start_date >= args.since)
    if args.user:
        query = query.where(log.c.user_id == args.user)
    if args.status:
        query = query.where(log.c.status_code == args.status)
    engine = make_engine(get_settings().database_url)
    with engine.connect() as conn:
        rows = conn.execute(query.limit(args.limit)).mappings().all()
    engine.dispose()
    for row in rows:
        if args.json:
            print(json.dumps(dict(row), default=str))
        else:
            print(
                f"{row['start_date']:%Y-%m-%d %H:%M:%S} {row['user_id']} {row['ip_address'] or '-'}"
                f" {row['method']} {row['url']} {row['status_code']} {row['duration_ms']:.1f}ms"
            )


def _extract(args: argparse.Namespace) -> None:
    """Built-in phenotype extraction over the documents (CONTRACT section 11), one commit
    per batch: a stopped run resumes where it was, documents already extracted from their
    current text are skipped."""
    from tqdm import tqdm

    from codoc_fhir.research import extraction
    from codoc_fhir.warehouse.db import make_engine, migrate

    settings = get_settings()
    migrate(settings.database_url)
    selection = extraction.Selection(
        args.thesaurus or settings.thesaurus_phenotype, args.patient, args.since
    )
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            extraction.check_thesaurus(conn, selection.thesaurus_code)
            total = extraction.count_selected(conn, selection)
        documents = stored = 0
        with tqdm(total=total, unit="doc", disable=args.quiet or None) as progress:
            batches = extraction.extract_batches(engine, selection, settings.text_language)
            for done, nums in batches:
                documents += done
                stored += len(nums)
                progress.update(done)
    except Exception as error:  # a FHIR error (unknown thesaurus) is a message, not a trace
        raise SystemExit(f"extract: {error}") from error
    finally:
        engine.dispose()
    print(f"{documents} documents read, {stored} phenotypes stored")


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
    load = commands.add_parser(
        "import", help="import FHIR resources from NDJSON and Bundle files (resumable)"
    )
    load.add_argument("files", nargs="+", metavar="FILE", help="in dependency order")
    load.add_argument("--database-url", help="default: CODOC_DATABASE_URL")
    load.add_argument(
        "--batch-size",
        type=_positive,
        default=500,
        help="resources per commit (default %(default)s)",
    )
    load.add_argument(
        "--continue-on-error", action="store_true", help="count failures instead of stopping"
    )
    load.add_argument("--errors", metavar="FILE", help="append failures here, one JSON a line")
    load.add_argument("--quiet", action="store_true", help="no progress output")
    load.set_defaults(handler=_import)
    access = commands.add_parser("access-log", help="print the API access log, newest first")
    access.add_argument("--since", type=_since, help="ISO date/time, or 30m / 2h / 7d back")
    access.add_argument("--user", help="only this user (token subject, or 'anonymous')")
    access.add_argument("--status", type=int, help="only this HTTP status")
    access.add_argument("--limit", type=int, default=100, help="at most this many rows")
    access.add_argument("--json", action="store_true", help="one JSON object per line")
    access.set_defaults(handler=_access_log)
    extract = commands.add_parser(
        "extract", help="extract phenotypes from the documents' text (resumable)"
    )
    extract.add_argument("--thesaurus", help="default: THESAURUS_CODE_PHENOTYPE")
    extract.add_argument("--since", type=_since, help="only documents changed since then")
    extract.add_argument("--patient", type=_positive, help="only this patient's documents")
    extract.add_argument("--quiet", action="store_true", help="no progress bar")
    extract.set_defaults(handler=_extract)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
