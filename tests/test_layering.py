"""The dependency rule, read from the source: `cli` on top; `app` and `worker` never import each other;
`model` (TensorFlow) imports only `contracts` and `storage`; `contracts` imports only `storage`; `storage`
imports nothing of ours. See docs/ARCHITECTURE.md."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("app", "worker", "model", "contracts", "storage", "cli")
ALLOWED = {
    "cli": {"cli", "app", "worker", "contracts", "model", "storage"},
    "app": {"app", "contracts", "model", "storage"},
    "worker": {"worker", "contracts", "model", "storage"},
    "model": {"model", "contracts", "storage"},
    "contracts": {"contracts", "storage"},
    "storage": {"storage"},
}


def imported_packages(path: Path) -> dict[str, int]:
    """Our top-level packages imported anywhere in `path` (also inside functions), with a line of each."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in OURS:
                found.setdefault(top, node.lineno)
    return found


@pytest.mark.parametrize("package", OURS)
def test_imports_run_only_downward(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no package {package}/"
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {imported}"
        for path in files
        for imported, line in imported_packages(path).items()
        if imported not in ALLOWED[package]
    ]
    assert not wrong, f"{package}/ may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


def test_strings_naming_modules_respect_the_rule_too():
    """Celery's `include` and uvicorn's factory path name modules in strings: only the CLI may name the API."""
    offenders = []
    for package in ("app", "worker", "contracts", "model"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text()
            for other in set(OURS) - ALLOWED[package] - {"worker"}:
                if f'"{other}.' in text:
                    offenders.append(f"{path.relative_to(REPO)} names {other}.* in a string")
    assert not offenders, "\n".join(offenders)
