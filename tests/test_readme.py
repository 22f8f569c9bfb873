"""The README's curl blocks, run as they are written against a real `codoc-fhir serve`.

Each block is taken from README.md itself (so the two cannot drift apart) and run by bash,
with only the server address changed; `curl` is wrapped to print each answer's status, and
every status must be the one the README's comment announces at the end of the command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import empty_tables
from tests.security.servers import CLI, running_server

README = Path(__file__).resolve().parents[1] / "README.md"
README_ADDRESS = "http://127.0.0.1:8000"
# The wrapper's --write-out comes last, so it wins over one a README command sets itself.
CURL_WRAPPER = "curl() { command curl \"$@\" --write-out '\\n@@status %{http_code}\\n'; }\n"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def bash_block(section: str) -> str:
    """The first ```bash block with a curl command under the README heading `section`."""
    text = README.read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```bash\n(.*?)```", text[start : end if end > 0 else None], re.S)
    return next(block for block in blocks if "\ncurl " in block)


def announced_statuses(block: str) -> list[str]:
    """The status each curl command announces: the `# NNN` ending its (last) line."""
    return re.findall(r"^curl\b.*?#\s*(\d{3})\b", block, re.M | re.S)


def run_block(block: str, url: str, workdir: Path) -> list[str]:
    """Run the block with bash against `url`; the statuses the server answered, in order."""
    script = CURL_WRAPPER + block.replace(README_ADDRESS, url)
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return re.findall(r"@@status (\d{3})", done.stdout)


def test_every_readme_curl_command_announces_its_status():
    for section in ("The first five minutes", "Walk-through: the seed page, with curl"):
        block = bash_block(section)
        commands = re.findall(r"^curl\b", block, re.M)
        assert len(announced_statuses(block)) == len(commands) > 5, section


def test_walk_through_from_an_empty_database(database_url, engine, tmp_path):
    empty_tables(engine)  # the README starts from an empty database: ids start at 1
    block = bash_block("Walk-through: the seed page, with curl")
    with running_server(tmp_path, {"CODOC_DATABASE_URL": database_url}) as url:
        statuses = run_block(block, url, tmp_path)
    empty_tables(engine)
    assert statuses == announced_statuses(block)


def test_first_five_minutes_on_the_demo_data(database_url, engine, tmp_path):
    empty_tables(engine)
    env = {"CODOC_DATABASE_URL": database_url}
    demo = subprocess.run(
        [str(CLI), "demo"], cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True
    )
    assert demo.stdout.startswith("demo data loaded"), demo.stderr
    block = bash_block("The first five minutes")
    with running_server(tmp_path, env) as url:
        statuses = run_block(block, url, tmp_path)
    empty_tables(engine)
    assert statuses == announced_statuses(block)
