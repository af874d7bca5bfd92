"""The code's layers, and the one direction imports may take between them.

``events`` is the pure contract; ``projections`` folds it and keeps the fold in PostgreSQL;
``services`` holds the adapters, the service layer and the entrypoints; ``tools`` is the
developer's (not in the wheel nor in the Docker image, so a product import of it would work
from a clone and fail in production). Each may import only itself and the layers below it.
Within ``services``, a shared module (messaging, privacy, access, the batch runner, ...) must
not import an entrypoint's package: what two entrypoints share moves down, so that no
entrypoint's internals become another's dependency. And no module may import itself back
through others: a cycle means two modules are one piece split in two, or a shared piece that
has no module of its own yet.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Lowest first: a module may import from its own layer and the ones before it.
LAYERS = ("events", "projections", "services", "tools")
PRODUCT = LAYERS[:3]
#: The packages of what runs (a process, the CLI); a shared module may import none of them.
ENTRYPOINTS = (
    "services.cli",
    "services.feed",
    "services.intake",
    "services.projector",
    "services.replay",
    "services.retention",
)


def imported_modules(tree: ast.AST, modules: Collection[str] = ()) -> set[str]:
    """Every absolute module an ``import`` or ``from ... import`` names, at any depth (the
    CLI imports lazily, inside functions; types may be imported under ``TYPE_CHECKING``); of
    the names a ``from`` takes, those among ``modules`` too (``from pkg import module``)."""
    names: set[str] = set()
    known = set(modules)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update({f"{node.module}.{a.name}" for a in node.names} & known)
    return names


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer(module: str) -> int | None:
    """The module's layer, lowest 0; None for what is not ours (the standard library, ...)."""
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else None


def entrypoint(module: str) -> str | None:
    return next((e for e in ENTRYPOINTS if within(module, e)), None)


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None when it may."""
    own, other = layer(importer), layer(imported)
    if own is None or other is None:
        return None
    if other > own:
        return f"{LAYERS[own]} imports the higher layer {LAYERS[other]}"
    if own == other == LAYERS.index("services"):
        target = entrypoint(imported)
        if target is not None and entrypoint(importer) is None:
            return f"a shared module imports the entrypoint {target}"
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_imports() -> dict[str, set[str]]:
    """Each product module and the modules it imports."""
    paths = {
        module_name(p): p for package in PRODUCT for p in sorted((ROOT / package).rglob("*.py"))
    }
    return {
        module: imported_modules(ast.parse(path.read_text(), str(path)), paths)
        for module, path in paths.items()
    }


def offenders(imports: Mapping[str, set[str]]) -> list[str]:
    return [
        f"{importer}: {imported} ({why})"
        for importer, modules in sorted(imports.items())
        for imported in sorted(modules)
        if (why := violation(importer, imported)) is not None
    ]


def cycles(imports: Mapping[str, set[str]]) -> Iterator[list[str]]:
    """Each import cycle among the given modules, once, as found by a depth-first walk."""
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> Iterator[list[str]]:
        if module in path:
            yield [*path[path.index(module) :], module]
            return
        if module in done:
            return
        for imported in sorted(imports[module] & imports.keys()):
            yield from walk(imported, [*path, module])
        done.add(module)

    for module in sorted(imports):
        yield from walk(module, [])


def test_the_rule_sees_plain_from_and_nested_imports() -> None:
    source = "import tools.stack\ndef f():\n    from tools import cli\nfrom toolsy import x\n"
    found = imported_modules(ast.parse(source))
    assert {m for m in found if violation("services.cli", m)} == {"tools.stack", "tools"}
    with_modules = imported_modules(ast.parse(source), ["tools.cli"])
    assert with_modules == found | {"tools.cli"}


def test_the_layers_and_the_entrypoints() -> None:
    assert violation("projections.store", "events.catalog") is None
    assert violation("services.projector.consumer", "services.projection.runner") is None
    assert violation("services.retention.job", "services.intake.service") is None  # entrypoints
    assert violation("tools.bench.steps", "services.projector.consumer") is None
    assert violation("services.replay.run", "json") is None
    assert violation("events.codec", "projections.store")
    assert violation("projections.chain", "services.privacy.keystore")
    assert violation("services.cli", "tools.runner")
    assert violation("services.access.recorder", "services.intake.recording")
    assert violation("services.views", "services.projector")


def test_a_cycle_is_found() -> None:
    imports = {"a": {"b"}, "b": {"c", "json"}, "c": {"a"}, "d": {"a"}}
    assert list(cycles(imports)) == [["a", "b", "c", "a"]]


def test_imports_go_down_the_layers_and_no_shared_module_imports_an_entrypoint() -> None:
    found = offenders(product_imports())
    assert found == [], "imports against the layers:\n" + "\n".join(found)


def test_no_product_modules_import_each_other_in_a_cycle() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(product_imports())]
    assert found == [], "import cycles:\n" + "\n".join(found)


#: The pure core: the event contract, the fold, the append policy and the service layer that
#: runs it. They reach state only through ports, so none may import a driver or a web stack.
PURE = (
    "events",
    "projections.state",
    "projections.deadlines",
    "services.intake.policy",
    "services.intake.admission",
    "services.intake.service",
    "services.intake.ports",
    "services.privacy.suppression",
)
IO = ("asyncpg", "aiokafka", "faststream", "fastapi", "starlette", "httpx", "uvicorn")


def impure(imports: Mapping[str, set[str]]) -> list[str]:
    return [
        f"{module}: {imported}"
        for module, modules in sorted(imports.items())
        if any(within(module, pure) for pure in PURE)
        for imported in sorted(modules)
        if any(within(imported, io) for io in IO)
    ]


def test_the_rule_finds_a_driver_in_the_pure_core() -> None:
    planted = {"services.intake.policy": {"asyncpg"}, "services.intake.postgres": {"asyncpg"}}
    assert impure(planted) == ["services.intake.policy: asyncpg"]


def test_the_pure_core_imports_no_driver_and_no_web_stack() -> None:
    found = impure(product_imports())
    assert found == [], "I/O in the pure core:\n" + "\n".join(found)
