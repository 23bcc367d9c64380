"""The core never imports a web framework, and importing the package does no work."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "assistant"
CORE = ["schemas", "fields", "errors", "parsing", "segmentation", "dialogue", "data", "training", "knowledge",
        "synthetic", "batch", "insights", "settings", "sessions"]
FRAMEWORKS = {"gradio", "fastapi", "starlette", "uvicorn", "gradio_client"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", [m for m in CORE if (PACKAGE / f"{m}.py").exists()])
def test_core_source_does_not_import_web_frameworks(module):
    assert not (_imports(PACKAGE / f"{module}.py") & FRAMEWORKS)


def test_importing_the_core_loads_no_web_framework():
    modules = [f"assistant.{m}" for m in CORE if (PACKAGE / f"{m}.py").exists()]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FRAMEWORKS)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_core_modules_do_not_import_adapters():
    adapters = {"app", "web", "api", "cli", "terminal", "batch_ui", "insights_ui"}
    for module in CORE:
        path = PACKAGE / f"{module}.py"
        if not path.exists():
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("assistant."):
                assert node.module.split(".")[1] not in adapters, f"{module} imports {node.module}"


def test_cli_import_is_cheap_and_does_nothing():
    code = ("import sys, assistant.cli\n"
            "heavy = [m for m in ('sklearn', 'gradio', 'fastapi', 'pandas', 'joblib') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
