"""Write one benchmark's section of docs/benchmarks.md, leaving the other sections as they are."""

from __future__ import annotations

import platform
import re
from pathlib import Path

from keepwell.io import write_text

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Every number here comes from `make bench` (or the single bench named in its section) on this
project's reference machine: 2 cores, 24 GiB, no GPU. Speed is reported as a ratio against a
baseline measured in the same run, never as a bare time to compare across machines.
"""


def machine() -> str:
    return f"{platform.machine()}, Python {platform.python_version()}, {platform.system()}"


def update_section(name: str, markdown: str, doc: Path = DOC) -> None:
    """Replace the section between `<!-- bench:name -->` markers (append it if absent)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else HEADER
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{block}\n"
    )
    write_text(doc, text)


def table(headers: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
