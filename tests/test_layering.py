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
            for other in set(OURS) - ALLOWED[package]:
                if f'"{other}.' in text:
                    offenders.append(f"{path.relative_to(REPO)} names {other}.* in a string")
    assert not offenders, "\n".join(offenders)


def _defines_a_router(path: Path) -> bool:
    return any(
        isinstance(node, ast.Assign)
        and any(getattr(target, "id", None) == "router" for target in node.targets)
        for node in ast.parse(path.read_text()).body
    )


def test_route_modules_never_import_each_other():
    """Helpers that several routes share live in app/api/ (deps, http, errors, services), not in a route
    module: a route module (one that defines `router`) imports no other route module."""
    routes = REPO / "app" / "api" / "routes"
    route_modules = {path.stem for path in routes.glob("*.py") if _defines_a_router(path)}
    assert {"colorize", "datasets", "health", "jobs", "models", "pages"} <= route_modules, route_modules
    offenders = []
    for path in sorted(routes.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            imported: list[str] = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "app.api.routes":
                imported = [f"app.api.routes.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported = [node.module]
            elif isinstance(node, ast.ImportFrom):  # relative: `from .models import x`, `from . import jobs`
                base = "app.api.routes" if node.level == 1 else "app.api"
                imported = (
                    [f"{base}.{node.module}"] if node.module else [f"{base}.{a.name}" for a in node.names]
                )
            for name in imported:
                parts = name.split(".")
                if parts[:3] == ["app", "api", "routes"] and len(parts) > 3 and parts[3] in route_modules:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} imports {name}")
    assert not offenders, "route modules import each other:\n" + "\n".join(offenders)
