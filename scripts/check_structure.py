"""Check the shape of the code: the import graph of codec/ and bitstream/, and their sizes.

Run from the repository root (CI does, from .ci/run), or name the root to check:

    python scripts/check_structure.py [ROOT]

It reads every ``.py`` file under ROOT/codec and ROOT/bitstream (tests, benchmarks, fuzz and
scripts are not the library and are not read), collects every import, at the top of a file or
inside a function (only those under ``if TYPE_CHECKING:`` are skipped: they never run), and
reports:

- circles: modules that import each other in a loop (a strongly connected component of the
  import graph with more than one module);
- upward imports: a module importing one of a higher layer (table ``LAYERS`` below);
- JAX in coding: a ``codec.levels`` module importing jax, flax, optax or sklearn, directly or
  through the codec modules it imports (coding must load no JAX);
- long modules (over ``MODULE_LINES`` lines; ``codec/cli.py`` included) and long functions
  (over ``FUNCTION_LINES`` lines, from ``def`` to the last line of the body).

Each finding is one line; the last line sums them up. The exit status is 1 when there is any
finding, 0 otherwise. Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

MODULE_LINES = 600  # a module reads in one sitting; codec/cli.py is held to the same limit
FUNCTION_LINES = 60  # a function fits on one screen

# The layers, lowest first. A module may import modules of its own layer and of lower ones, never
# of a higher one. A module belongs to the layer of the longest prefix that names it; a top-level
# module of codec that is not named here (a new part of the face, say codec.files) belongs to the
# face. The package ``codec`` itself is the face too: its lazy map (codec/__init__.py) loads the
# API on first use, through importlib rather than an import statement, so it draws no arrow.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("bitstream", ("bitstream",)),  # the container and the coder: knows nothing of codec
    ("base", ("codec.errors", "codec.signals", "codec.pretrained")),  # errors, signals, models
    ("io", ("codec.io",)),  # reading and writing files and datasets
    ("levels", ("codec.levels",)),  # the level kinds and their coding: never JAX
    ("training", ("codec.training",)),  # JAX, Flax, Optax and scikit-learn
    ("family", ("codec.family",)),  # the classic autoencoders
    ("face", ("codec", "codec.api", "codec.archive", "codec.parallel", "codec.numcodecs")),
    ("tools", ("codec.compare",)),  # built on the face: the codec comparison page
    ("commands", ("codec.commands",)),  # each command's work on files, for the command line
    ("cli", ("codec.cli",)),  # parses the command line and dispatches to the commands
    ("main", ("codec.__main__",)),  # the program: signal handlers first, then the CLI
]
FACE = "face"
HEAVY = ("jax", "flax", "optax", "sklearn")  # what training loads and coding must not
NO_HEAVY_LAYER = "levels"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a codec or bitstream module, or an outside top name)
    line: int


def module_name(root: Path, path: Path) -> str:
    """codec/levels/lossless.py -> codec.levels.lossless; codec/io/__init__.py -> codec.io."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def library_files(root: Path) -> dict[str, Path]:
    """Every module of codec/ and bitstream/ under root, by name."""
    files = {}
    for package in ("codec", "bitstream"):
        for path in sorted((root / package).rglob("*.py")):
            files[module_name(root, path)] = path
    return files


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith(
        "TYPE_CHECKING"
    )


def _walk_runtime(tree: ast.AST):
    """ast.walk, less the bodies of ``if TYPE_CHECKING:`` (imports that never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, known: set[str]) -> str:
    """The module an import loads: the longest known prefix of name, or its outside top name."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return parts[0]


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import statement of one module, each resolved to the module it loads."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            found += [Import(module, _resolve(a.name, known), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of this module, up level - 1
                package = module.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                # `from codec.levels import lossless` loads the module codec.levels.lossless
                full = f"{base}.{alias.name}"
                target = full if full in known else _resolve(base, known)
                found.append(Import(module, target, node.lineno))
    return [i for i in found if i.target != module]


def layer_of(module: str, is_package: bool = False) -> str | None:
    """The layer of a library module (see LAYERS), or None for a sub-package not in the table."""
    best, best_length = None, -1
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_length and (prefix != "codec" or module == "codec"):
                best, best_length = layer, len(prefix)
    top_level = module.startswith("codec.") and module.count(".") == 1 and not is_package
    if best is None and top_level:
        return FACE  # a new top-level module of codec is part of the face
    return best


def rank(layer: str) -> int:
    return [name for name, _ in LAYERS].index(layer)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _path_to_heavy(start: str, graph: dict[str, set[str]], heavy: dict[str, str]) -> list[str]:
    """The shortest chain of codec modules from start to a heavy import, or [] if none."""
    previous, frontier = {start: None}, [start]
    while frontier:
        following = []
        for node in frontier:
            if node in heavy:
                chain = [heavy[node]]
                while node is not None:
                    chain.append(node)
                    node = previous[node]
                return chain[::-1]
            for child in sorted(graph[node]):
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return []


def import_findings(root: Path, files: dict[str, Path]) -> dict[str, list[str]]:
    """Circles, upward imports and JAX reached from coding, each finding as one line."""
    known = set(files)
    imports = [i for m, p in files.items() for i in imports_of(m, p, known)]
    graph = {m: set() for m in files}
    heavy = {}
    for i in imports:
        if i.target in known:
            graph[i.source].add(i.target)
        elif i.target in HEAVY:
            heavy.setdefault(i.source, i.target)
    found = {"circle": [], "upward": [], "unplaced": [], "jax in coding": []}
    for component in circles(graph):
        found["circle"].append(" <-> ".join(component))
    for module, path in sorted(files.items()):
        if layer_of(module, path.name == "__init__.py") is None:
            found["unplaced"].append(f"{module}: in no layer of scripts/check_structure.py")
    for i in imports:
        if i.target not in known or None in (layer_of(i.source), layer_of(i.target)):
            continue
        source, target = layer_of(i.source), layer_of(i.target)
        if rank(target) > rank(source):
            where = f"{files[i.source].relative_to(root)}:{i.line}"
            found["upward"].append(f"{where}: {i.source} ({source}) imports {i.target} ({target})")
    for module in sorted(files):
        if layer_of(module) == NO_HEAVY_LAYER:
            chain = _path_to_heavy(module, graph, heavy)
            if chain:
                found["jax in coding"].append(" -> ".join(chain))
    found["imports"] = len(imports)
    return found


def size_findings(root: Path, files: dict[str, Path]) -> dict[str, list[str]]:
    """Modules over MODULE_LINES lines and functions over FUNCTION_LINES lines."""
    found = {"long module": [], "long function": []}
    for path in files.values():
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(root)
        lines = len(text.splitlines())
        if lines > MODULE_LINES:
            found["long module"].append(f"{where}: {lines} lines (limit {MODULE_LINES})")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    found["long function"].append(
                        f"{where}:{node.lineno}: {node.name} {length} lines "
                        f"(limit {FUNCTION_LINES})"
                    )
    return found


def check(root: Path) -> int:
    """Print every finding and a summary line; 1 if there is any finding, else 0."""
    files = library_files(root)
    found = import_findings(root, files) | size_findings(root, files)
    imports = found.pop("imports")
    for kind, lines in found.items():
        for line in sorted(lines):
            print(f"{kind}: {line}")
    total = sum(len(lines) for lines in found.values())
    counts = ", ".join(f"{len(lines)} {kind}" for kind, lines in found.items())
    verdict = "FAILED" if total else "ok"
    print(f"check_structure: {len(files)} modules, {imports} imports; {counts}: {verdict}")
    return 1 if total else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent
    parser.add_argument("root", nargs="?", type=Path, default=default, help="repository root")
    return check(parser.parse_args(argv).root.resolve())


if __name__ == "__main__":
    sys.exit(main())
