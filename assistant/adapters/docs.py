"""Generated documentation: the field table in the README comes from the field declarations.

    python -m assistant.adapters.docs            # print the table
    python -m assistant.adapters.docs --write    # update it in README.md between its markers
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from assistant.core.fields import FIELDS

README = Path(__file__).resolve().parents[2] / "README.md"


def fields_markdown() -> str:
    lines = ["| field | label | unit | allowed | from the raw file | said as |", "|---|---|---|---|---|---|"]
    for f in FIELDS:
        said = ", ".join(f"“{s}”" for s in f.synonyms[:5])
        allowed = f"{f.minimum:,.0f} to {f.maximum:,.0f}"
        lines.append(f"| `{f.name}` | {f.label} | {f.unit} | {allowed} | {f.source} | {said} |")
    return "\n".join(lines)


def write_readme(path: Path = README) -> None:
    text = path.read_text(encoding="utf-8")
    block = f"<!-- fields-table -->\n{fields_markdown()}\n<!-- /fields-table -->"
    path.write_text(re.sub(r"<!-- fields-table -->.*?<!-- /fields-table -->", lambda _: block, text, flags=re.S),
                    encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    write_readme() if "--write" in sys.argv else print(fields_markdown())
