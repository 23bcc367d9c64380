"""Where the browser tests find Chromium, and what happens when it is missing.

Locally they skip with a loud reason; in CI (``REQUIRE_BROWSER=1``, set by ``.ci/run``, which
installs Debian's chromium) a missing browser is a failure, so CI never silently skips them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def need_chromium(*, module_level: bool = False) -> None:
    if CHROMIUM.exists():
        return
    message = f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(message.replace("SKIPPED", "CANNOT RUN") + "; REQUIRE_BROWSER=1 forbids skipping",
                    pytrace=False)
    pytest.skip(message, allow_module_level=module_level)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
