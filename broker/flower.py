"""Start Flower with basic auth: ``python -m broker.flower [flower options]``.

    python -m broker.flower --address=127.0.0.1 --port=5555

Replaces itself (``exec``, same pid, so SIGTERM reaches Flower) with
``celery -A tasks flower <options>``, the credentials in Flower's own ``FLOWER_BASIC_AUTH``
environment variable (not on the command line, where ``ps`` would show them):

- ``FLOWER_BASIC_AUTH=user:password`` (settings) is used as it is;
- unset with ``PIPELINE_PROFILE=local``: a random password for user ``admin`` is generated
  once into ``.run/flower-password`` (mode 0600, reused on every start) and printed;
- unset with ``PIPELINE_PROFILE=production``: Flower is not started (exit 2): its API can
  revoke tasks and shut workers down, so it never runs unauthenticated.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from pipeline.settings import ConfigError, Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
#: where a generated local password is kept
PASSWORD_FILE = ROOT / ".run" / "flower-password"
#: user name of a generated password
GENERATED_USER = "admin"


class NoCredentials(ConfigError):
    """FLOWER_BASIC_AUTH is empty where a password may not be generated."""


def credentials(settings: Settings, password_file: Path = PASSWORD_FILE) -> tuple[str, bool]:
    """(``user:password``, generated-now) for Flower.

    Raises:
        NoCredentials: production profile without FLOWER_BASIC_AUTH.
    """
    if settings.flower_basic_auth:
        return settings.flower_basic_auth, False
    if not settings.is_local:
        raise NoCredentials("FLOWER_BASIC_AUTH is empty: set user:password (Flower's API can "
                            "revoke tasks and shut workers down; it never runs without auth)")
    if password_file.exists():
        value = password_file.read_text().strip()
        if ":" in value:
            return value, False
    password_file.parent.mkdir(parents=True, exist_ok=True)
    value = f"{GENERATED_USER}:{secrets.token_urlsafe(18)}"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value, True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        auth, generated = credentials(get_settings())
    except ConfigError as exc:
        print(f"flower not started: {exc}", file=sys.stderr)
        return 2
    if not get_settings().flower_basic_auth:
        state = "generated" if generated else "reused"
        print(f"flower: FLOWER_BASIC_AUTH is empty; {state} credentials {auth} "
              f"(in {PASSWORD_FILE})", file=sys.stderr, flush=True)
    env = {**os.environ, "FLOWER_BASIC_AUTH": auth}
    argv_exec = ["celery", "-A", "tasks", "flower", *args]
    os.execvpe(argv_exec[0], argv_exec, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
