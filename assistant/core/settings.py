"""One typed settings object, built in ``main()`` from the command line and the environment,
then passed down. Nothing reads the environment anywhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from assistant.core.errors import AssistantError

AUTH_ENV = "SEGMENT_ASSISTANT_AUTH"  # "user:pass" or "user1:pass1,user2:pass2"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_dir: Path | None = None          # None: the committed models/
    knowledge_dir: Path | None = None      # None: the committed knowledge/
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=0, le=65535)
    share: bool = False
    share_without_auth: bool = False
    auth: tuple[tuple[str, str], ...] = ()
    root_path: str = ""
    allow_origins: tuple[str, ...] = ()
    frame_ancestors: tuple[str, ...] = ()
    max_message_chars: int = 10_000
    max_upload_bytes: int = 50 * 1024 * 1024
    # 10,000 profiles pretty-printed take about 2.3 MB: a body above this is refused before it is parsed
    max_request_bytes: int = 4 * 1024 * 1024
    # Gradio's session controls (cancel, reset, stream close, heartbeat) and the sign-in form need a few
    # hundred bytes; they answer without a sign-in, so their bodies are capped far lower
    max_control_bytes: int = 4 * 1024
    max_batch_items: int = 10_000
    session_ttl_seconds: float = 3600.0
    max_sessions: int = 10_000
    # one signed-in user's REST chat sessions; beyond it that user's least recently used one goes
    max_sessions_per_user: int = Field(default=1_000, ge=1)
    # failed sign-ins (Gradio's form or HTTP Basic) within the window before further tries are refused
    max_failed_sign_ins_per_user: int = Field(default=5, ge=1)
    max_failed_sign_ins_per_address: int = Field(default=30, ge=1)
    sign_in_window_seconds: float = Field(default=60.0, gt=0)
    # open server-sent-event streams (Gradio's heartbeat) per client address
    max_streams_per_client: int = Field(default=32, ge=1)
    # Gradio keeps a copy of the UI's config for every browser tab or API session (about 125-180 KB
    # each, measured in tests/test_load.py) until this many exist; then the least recently used goes.
    max_ui_sessions: int = Field(default=1_000, ge=1)
    concurrency_limit: int = 32


def parse_credentials(text: str, *, source: str) -> tuple[tuple[str, str], ...]:
    """``user:pass[,user2:pass2]`` -> pairs. The message never repeats a password."""
    pairs = []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            # Name the user only when a colon says which part is the user: a lone word may be a password.
            raise AssistantError(f"{source}: credentials must look like USER:PASS (user {user!r} has none)"
                                 if sep and user else f"{source}: credentials must look like USER:PASS")
        pairs.append((user, password))
    if not pairs:
        raise AssistantError(f"{source}: no USER:PASS credentials given")
    return tuple(pairs)


def resolve_auth(*, auth: str | None, auth_file: str | None,
                 environ: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    environ = os.environ if environ is None else environ
    if auth:
        return parse_credentials(auth, source="--auth")
    if auth_file:
        path = Path(auth_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AssistantError(f"--auth-file {path} cannot be read ({exc.strerror})") from None
        return parse_credentials(text, source=f"--auth-file {path}")
    if environ.get(AUTH_ENV):
        return parse_credentials(environ[AUTH_ENV], source=AUTH_ENV)
    return ()
