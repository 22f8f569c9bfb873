"""The gunicorn worker of `codoc-fhir serve --workers N`: uvicorn's, with the ASGI root path.

gunicorn builds each worker's uvicorn config from its own settings, which have no root
path; the CLI puts `--root-path` in CODOC_ROOT_PATH before gunicorn starts, and this class
(imported by the gunicorn master, inherited by every worker) hands it to uvicorn.
"""

from __future__ import annotations

import os
from typing import Any

from uvicorn.workers import UvicornWorker

from codoc_fhir.cli import ROOT_PATH_VARIABLE


class RootPathUvicornWorker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        **UvicornWorker.CONFIG_KWARGS,
        "root_path": os.environ.get(ROOT_PATH_VARIABLE, ""),
    }
