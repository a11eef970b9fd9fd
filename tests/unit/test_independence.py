"""Services never import each other: what they share lives in ``shared``."""
from __future__ import annotations

import ast
from pathlib import Path

from shared.settings import REPO_ROOT, SERVICES


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_service_imports_another_service():
    offenders = []
    for service in SERVICES:
        for path in (REPO_ROOT / "services" / service).rglob("*.py"):
            for module in imported_modules(path):
                parts = module.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != service:
                    offenders.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert offenders == []


def test_the_shared_package_imports_no_service_directly():
    offenders = []
    for path in (REPO_ROOT / "shared").rglob("*.py"):
        for module in imported_modules(path):
            if module.split(".")[0] == "services":
                offenders.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert offenders == []
