"""Reading prompts from a text file (``generate --prompt-file``)."""

from __future__ import annotations

from fluxmusic.cli.console import UserError

__all__ = ["PROMPT_FILE_LIMIT", "read_prompt_file"]

PROMPT_FILE_LIMIT = 16 * 2**20
"""The largest prompt file read (bytes): a text file of prompts, not a data set."""


def read_prompt_file(path: str) -> list[str]:
    """Prompts from a UTF-8 text file, one per line (blank lines and ``#`` comments skipped; a BOM is fine).

    Raises:
        UserError: missing, unreadable, too large, not text, or holding no prompt.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(PROMPT_FILE_LIMIT + 1)
    except FileNotFoundError:
        raise UserError(f"prompt file not found: {path}") from None
    except OSError as err:
        raise UserError(f"cannot read prompt file {path}: {err.strerror or err}") from None
    if len(data) > PROMPT_FILE_LIMIT:
        raise UserError(
            f"prompt file {path} is over {PROMPT_FILE_LIMIT >> 20} MB; split it into smaller files"
        )
    try:
        if b"\x00" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), data.index(b"\x00") + 1, "NUL byte")
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"prompt file {path} is not UTF-8 text; write one prompt per line") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise UserError(f"prompt file {path} holds no prompts; write one prompt per line")
    return prompts
