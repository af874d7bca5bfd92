"""The product never imports the developer's tools: ``tools/`` is not in the wheel nor in the
Docker image, so such an import would work from a clone and fail in production."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("events", "projections", "services")
FORBIDDEN = "tools"


def imported_modules(tree: ast.AST) -> set[str]:
    """Every absolute module an ``import`` or ``from ... import`` names, at any depth (the
    CLI imports lazily, inside functions)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def forbidden(module: str) -> bool:
    return module == FORBIDDEN or module.startswith(FORBIDDEN + ".")


def test_the_rule_sees_plain_from_and_nested_imports() -> None:
    source = "import tools.stack\ndef f():\n    from tools import cli\nfrom toolsy import x\n"
    found = {m for m in imported_modules(ast.parse(source)) if forbidden(m)}
    assert found == {"tools.stack", "tools"}


def test_no_product_module_imports_the_tools() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in sorted(imported_modules(ast.parse(path.read_text(), str(path))))
        if forbidden(module)
    ]
    assert offenders == [], "the product imports the developer's tools:\n" + "\n".join(offenders)
