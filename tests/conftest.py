"""Shared fixtures. Real-data tests skip when ../shared/data/marketing_campaign.csv is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT.parent / "shared" / "data" / "marketing_campaign.csv"


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    if not REAL_DATA.is_file():
        pytest.skip(f"real data file not found at {REAL_DATA} (CI has it)")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_data(real_data_path):
    from assistant.model.data import load_customers

    return load_customers(real_data_path)


@pytest.fixture(scope="session")
def service():
    from assistant.model.segmentation import SegmentationService

    return SegmentationService.load()


@pytest.fixture(scope="session")
def knowledge():
    from assistant.core.knowledge import load_knowledge

    return load_knowledge()


@pytest.fixture(scope="session")
def synthetic_file(tmp_path_factory) -> Path:
    from assistant.model.synthetic import generate_customers, write_customers

    path = tmp_path_factory.mktemp("synthetic") / "customers.csv"
    return write_customers(generate_customers(2240, seed=7), path)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (skips loudly without it; fails under REQUIRE_BROWSER=1)."""
    from _browser import CHROMIUM, CHROMIUM_ARGS, need_chromium

    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
