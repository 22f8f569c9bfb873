"""codoc-fhir: a FHIR R4B (4.3.0) server over the Codoc clinical data warehouse.

Commands: serve, migrate, demo, import, access-log, extract. Every command reads its
settings from the environment (and an optional .env file in the working directory),
CODOC_DATABASE_URL first (default: sqlite:///codoc.db).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from codoc_fhir import FHIR_VERSION, __version__
from codoc_fhir.config import ROOT_PATH_VARIABLE, get_settings

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _serve(args: argparse.Namespace) -> None:
    """Migrate, then serve with uvicorn (or gunicorn + uvicorn workers).

    Both run api/http_protocol.py's protocol: bounded request heads, no access log of
    their own, no X-Forwarded-* handling (the application does it, api/origin.py). The
    bind address goes to the workers as CODOC_HOST: a Host naming it is allowed.
    """
    from codoc_fhir.warehouse.db import migrate

    os.environ["CODOC_HOST"] = args.host
    get_settings.cache_clear()
    settings = get_settings()
    migrate(settings.database_url)
    if args.workers > 1:
        from gunicorn.app.wsgiapp import run

        os.environ[ROOT_PATH_VARIABLE] = args.root_path  # read by the worker class
        sys.argv = [
            "gunicorn",
            "codoc_fhir.asgi:app",
            "--worker-class",
            "codoc_fhir.api.http_protocol.Worker",
            "--workers",
            str(args.workers),
            "--bind",
            f"{args.host}:{args.port}",
            "--log-level",
            "debug" if args.log_level == "trace" else args.log_level,
        ]
        run()
        return
    import uvicorn

    from codoc_fhir.api.http_protocol import server_options

    uvicorn.run(
        "codoc_fhir.asgi:app",
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        **server_options(),
        root_path=args.root_path,
    )


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
    """Bulk import of NDJSON and Bundle files (docs/IMPORT.md); exits 1 on failures, 2 when
    another import runs on the database (without --wait), 3 when the database fails."""
    from pathlib import Path

    from codoc_fhir.bulk.importer import ImportOptions, run_import

    settings = get_settings()
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    options = ImportOptions(
        batch_size=args.batch_size,
        continue_on_error=args.continue_on_error,
        errors_path=Path(args.errors) if args.errors else None,
        quiet=args.quiet,
        wait=args.wait,
        check_ahead=args.check_ahead,
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


def _database_problem(error: Exception, url: str) -> str:
    """One line saying why the database cannot be used (no traceback, no password)."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return f"codoc-fhir: CODOC_DATABASE_URL is not a database URL: {url!r}"
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    reason = reason.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    if "no such table" in reason or reason.startswith("relation "):  # SQLite, PostgreSQL
        return f"codoc-fhir: {shown} has no warehouse tables yet: run `codoc-fhir migrate`"
    if "does not exist" in reason:
        return f"codoc-fhir: {reason} ({shown}): create it first, or set CODOC_DATABASE_URL"
    return f"codoc-fhir: cannot use the database {shown}: {reason}"


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per task, every option with its default."""
    parser = argparse.ArgumentParser(
        prog="codoc-fhir",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"codoc-fhir {__version__} (FHIR {FHIR_VERSION})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    commands.add_parser(
        "migrate",
        help="bring the database to the latest schema",
        description="Create the warehouse tables, or upgrade them to the current schema.",
    ).set_defaults(handler=_migrate)
    commands.add_parser(
        "demo",
        help="load the demo data set (idempotent)",
        description=(
            "Migrate, then load the demo resources the database lacks (each is matched by "
            "its identifier): a second run adds nothing."
        ),
    ).set_defaults(handler=_demo)
    _add_import(commands)
    _add_access_log(commands)
    _add_extract(commands)
    return parser


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="apply migrations, then serve the API",
        description=(
            "Bring the database to the current schema, then serve the FHIR API "
            f"(/v{FHIR_VERSION}/..., /docs). One uvicorn process, or gunicorn with "
            "--workers N."
        ),
    )
    serve.add_argument(
        "--host",
        default=os.environ.get("CODOC_HOST", "127.0.0.1"),
        help="address to listen on, 0.0.0.0 for every one (default %(default)s, env CODOC_HOST)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("CODOC_PORT", "8000")),
        help="TCP port to listen on (default %(default)s, env CODOC_PORT)",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes; more than 1 runs gunicorn, for production (default %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=LOG_LEVELS,
        help="server log verbosity (default %(default)s)",
    )
    serve.add_argument(
        "--root-path",
        default=os.environ.get(ROOT_PATH_VARIABLE, ""),
        help=(
            "URL prefix a reverse proxy serves the API under, e.g. /fhir: the proxy strips "
            f"it, links and /docs keep it (default none, env {ROOT_PATH_VARIABLE})"
        ),
    )
    serve.set_defaults(handler=_serve)


def _add_import(commands: Any) -> None:
    load = commands.add_parser(
        "import",
        help="import FHIR resources from NDJSON and Bundle files (resumable)",
        description="Bulk import, resumable; see docs/IMPORT.md.",
    )
    load.add_argument(
        "files", nargs="+", metavar="FILE", help="NDJSON or Bundle files, in any order"
    )
    load.add_argument(
        "--database-url", metavar="URL", help="the database to load (default: CODOC_DATABASE_URL)"
    )
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
    load.add_argument(
        "--wait",
        action="store_true",
        help="wait for another import running on the database (default: exit 2)",
    )
    load.add_argument(
        "--check-ahead",
        choices=("auto", "on", "off"),
        default="auto",
        help="the R4B model check of NDJSON lines in a second process (default auto: "
        "files of 1 MB or more, on more than one core)",
    )
    load.set_defaults(handler=_import)


def _add_access_log(commands: Any) -> None:
    access = commands.add_parser(
        "access-log",
        help="print the API access log, newest first",
        description="Rows of fhir_access_log (one per request), newest first.",
    )
    access.add_argument(
        "--since", type=_since, metavar="WHEN", help="ISO date/time, or 30m / 2h / 7d back"
    )
    access.add_argument("--user", help="only this user (token subject, or 'anonymous')")
    access.add_argument("--status", type=int, metavar="CODE", help="only this HTTP status")
    access.add_argument(
        "--limit", type=_positive, default=100, help="at most this many rows (default %(default)s)"
    )
    access.add_argument("--json", action="store_true", help="one JSON object per line")
    access.set_defaults(handler=_access_log)


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


def _add_extract(commands: Any) -> None:
    extract = commands.add_parser(
        "extract",
        help="extract phenotypes from the documents' text (resumable)",
        description=(
            "Find the thesaurus's concepts in the documents' plain text and store phenotype "
            "Observations with their negation, hypothesis and family qualifiers."
        ),
    )
    extract.add_argument("--thesaurus", help="default: THESAURUS_CODE_PHENOTYPE")
    extract.add_argument("--since", type=_since, help="only documents changed since then")
    extract.add_argument("--patient", type=_positive, help="only this patient's documents")
    extract.add_argument("--quiet", action="store_true", help="no progress bar")
    extract.set_defaults(handler=_extract)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (OperationalError, ProgrammingError, ArgumentError) as error:
        if isinstance(error, ProgrammingError) and "does not exist" not in str(error.orig):
            raise  # a bug, not a database to set up: keep the traceback
        url = getattr(args, "database_url", None) or get_settings().database_url
        print(_database_problem(error, url), file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
