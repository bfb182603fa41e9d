"""Outside the modality modules (and their preprocessors), the importers of other projects' checkpoints and
the starter-set builder, code reads the registry instead of naming a modality: at most a handful of source
files still spell "image", "text" or "audio" as a string literal (docstrings aside), each for a stated reason.
Before the registry, 31 files did."""

from __future__ import annotations

import ast
from pathlib import Path

import omnibind

SOURCE = Path(omnibind.__file__).parent
EXEMPT = ("modalities/", "preprocess/", "convert/", "starter/")
BUILT_INS = {"image", "text", "audio"}
ALLOWED = {
    "evaluate/report.py": "draws saved media by MIME family (<img> for image/*, <audio> for audio/*)",
    "evaluate/run.py": "the eval JSON's inline-text field, which the report reads",
    "search/cli.py": "the --image and --audio options that predate --file",
    "search/uploads.py": "the top-level MIME families an upload's content type may name",
}


def literal_lines(path: Path) -> list[int]:
    """Lines where a built-in modality's name appears as a string constant that is not a docstring."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and node.value in BUILT_INS and id(node) not in docstrings)


def test_at_most_a_handful_of_files_name_a_modality() -> None:
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE).as_posix()
        if not relative.startswith(EXEMPT) and (lines := literal_lines(path)):
            found[relative] = lines
    unexplained = {name: lines for name, lines in found.items() if name not in ALLOWED}
    assert not unexplained, f"read the modality registry instead of naming a modality: {unexplained}"
    assert len(found) <= 5
