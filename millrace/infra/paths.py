"""Where local infrastructure keeps its state, and where the Kafka jars are cached."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_LOCAL = REPO_ROOT / "deploy" / "local"


def state_dir() -> Path:
    """``MILLRACE_STATE_DIR``, else ``<repo>/.run`` (gitignored), else ``./.run``.

    Data, logs and pid files live here, so deleting it resets the local stack.
    """
    explicit = os.environ.get("MILLRACE_STATE_DIR")
    if explicit:
        return Path(explicit).resolve()
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / ".run"
    return Path.cwd() / ".run"


def cache_dir() -> Path:
    """``MILLRACE_CACHE_DIR``, else the user cache directory; survives ``make clean``."""
    explicit = os.environ.get("MILLRACE_CACHE_DIR")
    if explicit:
        return Path(explicit).resolve()
    return Path(user_cache_dir("millrace"))
