"""Writing files so that a reader never sees half of one: temp names, renames, hard links."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

def link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest`` (same file system), else copy it."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def publish_dir(partial: Path, final: Path) -> str:
    """Rename a finished temp folder into place; if another run got there first, keep theirs."""
    try:
        os.rename(partial, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)
    return str(final)
