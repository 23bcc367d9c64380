"""The layout holds: import-linter's contracts (layers, forbidden frameworks, no cycles) pass, every
subpackage is one concern of modestly sized modules, and importing does no work."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "assistant"
SUBPACKAGES = ("core", "model", "conversation", "insights", "batch", "adapters")
MAX_MODULE_LINES = 700
FRAMEWORKS = ("gradio", "fastapi", "starlette", "uvicorn", "gradio_client")


def _lint_imports() -> Path:
    exe = Path(sys.executable).parent / "lint-imports"
    if exe.exists():
        return exe
    found = shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return Path(found)


def test_import_linter_contracts_are_kept():
    out = subprocess.run([str(_lint_imports())], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout
    assert out.stdout.count("KEPT") >= 4


def test_the_contracts_name_every_subpackage():
    config = (ROOT / "pyproject.toml").read_text()
    for name in SUBPACKAGES:
        assert f'"assistant.{name}' in config, f"assistant.{name} is in no import-linter contract"
    found = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert found == set(SUBPACKAGES), f"a new subpackage needs a place in the layers: {sorted(found)}"


def test_no_module_is_over_the_size_limit():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_importing_every_module_below_the_adapters_loads_no_web_framework():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for name in SUBPACKAGES if name != "adapters"
        for p in (PACKAGE / name).rglob("*.py"))
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {list(FRAMEWORKS)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_cli_import_is_cheap_and_does_nothing():
    code = ("import sys, assistant.adapters.cli\n"
            "heavy = [m for m in ('sklearn', 'gradio', 'fastapi', 'pandas', 'joblib') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_entry_points_stay():
    code = ("from assistant.schemas import CustomerProfile, ProfileDraft\n"
            "from assistant.segmentation import SegmentationService\n"
            "from assistant.core.schemas import CustomerProfile as C\n"
            "assert CustomerProfile is C\n")
    subprocess.run([sys.executable, "-c", code], check=True)
