"""A source wherever it is, for the commands that read it in their own process (`probe`, `analyze`, `plan`):
a local file as it is, an s3:// object copied first. (`run` has its workers fetch and probe S3 sources.)"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from ..pipeline.config import FarmConfig
from ..pipeline.destinations import is_s3
from ..pipeline.models import SourceInfo
from ..pipeline.probe import probe


@contextlib.contextmanager
def local_copy(source: str) -> Iterator[str]:
    """A local path for ``source``: itself, or for s3://bucket/key a copy in a temporary folder, removed after."""
    if not is_s3(source):
        yield source
        return
    from .s3 import Transfer, fetch  # boto3 only for a source that needs it

    with tempfile.TemporaryDirectory(prefix="onetake-") as scratch:
        yield fetch(source, scratch, Transfer.from_params(FarmConfig().transfer()))


def probe_anywhere(source: str, work_dir: str, transfer: dict[str, Any]) -> SourceInfo:
    """``probe`` of a local file, or of an s3:// object fetched into ``work_dir`` (kept there for the run)."""
    if not is_s3(source):
        return probe(source)
    from .s3 import Transfer, fetch

    local = fetch(source, os.path.abspath(work_dir), Transfer.from_params(transfer))
    return dataclasses.replace(probe(local), url=source)
