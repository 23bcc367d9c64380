"""Where the knowledge base and the model are found, in a checkout and in an installed wheel.

The top-level ``knowledge/`` and ``models/`` folders of the repository are the source of truth.
A wheel ships copies of them inside the package (``assistant/_bundled/knowledge`` and
``assistant/_bundled/models``, see ``[tool.setuptools]`` in ``pyproject.toml``), so an installed
package runs from any folder. Order of precedence, for each folder:

1. the command's flag (``--knowledge-dir``, ``--model-dir``) or the caller's argument;
2. the environment variable (``SEGMENT_ASSISTANT_KNOWLEDGE_DIR``, ``SEGMENT_ASSISTANT_MODEL_DIR``);
3. the copy bundled in an installed wheel;
4. the checkout's top-level folder (a source tree or an editable install).

Training never writes into an installed package: without ``--out`` it writes to the checkout's
``models/`` or, when installed, to :func:`user_model_dir` (and says where).
"""

from __future__ import annotations

import os
from pathlib import Path

KNOWLEDGE_ENV = "SEGMENT_ASSISTANT_KNOWLEDGE_DIR"
MODEL_ENV = "SEGMENT_ASSISTANT_MODEL_DIR"
_PACKAGE = Path(__file__).resolve().parents[1]
_BUNDLED = _PACKAGE / "_bundled"
_CHECKOUT = _PACKAGE.parent


def _resolve(name: str, env: str) -> Path:
    configured = os.environ.get(env, "").strip()
    if configured:
        return Path(configured).expanduser()
    bundled = _BUNDLED / name
    if bundled.is_dir():
        return bundled
    return _CHECKOUT / name


def default_knowledge_dir() -> Path:
    """The knowledge base folder when no ``--knowledge-dir`` is given."""
    return _resolve("knowledge", KNOWLEDGE_ENV)


def default_model_dir() -> Path:
    """The model folder when no ``--model-dir`` is given."""
    return _resolve("models", MODEL_ENV)


def is_installed_copy(path: Path) -> bool:
    """True for a folder inside the installed package (never written to)."""
    try:
        path.resolve().relative_to(_PACKAGE)
    except ValueError:
        return False
    return True


def user_model_dir() -> Path:
    """Where ``train`` writes without ``--out`` when the package is installed (not a checkout):
    ``$XDG_DATA_HOME/segment-assistant/models`` (default ``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / "segment-assistant" / "models"


def training_output_dir() -> Path:
    """The default output of ``train``: the model folder in force, unless that is the installed package's
    own copy, then :func:`user_model_dir`."""
    target = default_model_dir()
    return user_model_dir() if is_installed_copy(target) else target
