"""Writes src/rampart_client/sync_client.py (RampartClient) from client.py (AsyncRampartClient).

usage: python scripts/unasync.py [--check]   (--check: exit 1 if the file is not current)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "rampart_client"

REPLACEMENTS = [
    (
        r'"""The JSON API client, async.*?\n"""\n',
        '"""The JSON API client, blocking. GENERATED from client.py by scripts/unasync.py: do not edit."""\n',
    ),
    (
        r"from ._client_base import AsyncBase, JsonObject, body, query",
        "from ._client_base import JsonObject, SyncBase, body, query\nfrom .client import OPERATIONS, _seg",
    ),
    (
        r"\nOPERATIONS: dict\[str, tuple\[str, str\]\] = \{.*?\n\}\n",
        '\n__all__ = ["OPERATIONS", "RampartClient"]\n',
    ),
    (r"\n\ndef _seg\(value: str\) -> str:\n.*?return quote\(value, safe=\"\"\)\n\n", "\n"),
    (r"class AsyncRampartClient\(AsyncBase\):", "class RampartClient(SyncBase):"),
    (r"``AsyncRampartClient\(", "``RampartClient("),
    (r"async def ", "def "),
    (r"await ", ""),
]


def render() -> str:
    text = (SRC / "client.py").read_text()
    for pattern, repl in REPLACEMENTS:
        text = re.sub(pattern, repl, text, flags=re.S)
    # Formatted as the rest of the package (ruff, a development dependency, beside this Python).
    ruff = Path(sys.executable).parent / "ruff"
    out = subprocess.run(  # noqa: S603 - our own ruff on our own file
        [str(ruff), "format", "--stdin-filename", str(SRC / "sync_client.py"), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def main() -> int:
    target = SRC / "sync_client.py"
    text = render()
    if "--check" in sys.argv:
        if target.read_text() != text:
            print("sync_client.py is stale: run python scripts/unasync.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
