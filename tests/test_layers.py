"""The layer rule (../shared/design/ARCHITECTURE.md): workers may import the pipeline, never the other way; planning
imports no PyAV, numpy or subprocess, so that plans can be made and tested anywhere."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "onetake"


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def test_the_pipeline_never_imports_the_workers():
    offenders = {str(p.relative_to(PACKAGE)): sorted(i for i in imports_of(p) if i.startswith("onetake.workers"))
                 for p in (PACKAGE / "pipeline").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_planning_imports_no_pyav_numpy_or_subprocess():
    banned = ("av", "numpy", "subprocess", "cv2")
    offenders = {str(p.relative_to(PACKAGE)): sorted(i for i in imports_of(p) if i.split(".")[0] in banned)
                 for p in (PACKAGE / "pipeline" / "plan").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
    loaded = subprocess.run([sys.executable, "-c", "import sys, onetake.pipeline.plan; "
                             "print(' '.join(m for m in ('av', 'numpy', 'cv2') if m in sys.modules))"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], f"planning pulled in {loaded}"
