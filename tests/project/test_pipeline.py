"""dvc.yaml is the map of the project: each stage's deps are exactly the code it runs."""

import ast
from pathlib import Path

import pytest
import yaml

from helpers import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def seecam_imports(path: Path) -> set[str]:
    """Files under src/seecam/ that `path` imports, transitively."""
    seen: set[str] = set()
    todo = [path]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seecam"):
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.startswith("seecam")]
            for name in names + [".".join(n.split(".")[:i]) for n in names for i in range(2, n.count(".") + 1)]:
                for candidate in (f"src/{name.replace('.', '/')}.py", f"src/{name.replace('.', '/')}/__init__.py"):
                    if (REPO / candidate).is_file() and candidate not in seen:
                        seen.add(candidate)
                        todo.append(REPO / candidate)
    return seen


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_are_exactly_the_code_it_imports(stage):
    spec = STAGES[stage]
    script = spec["cmd"].split()[1]
    code_deps = {d for d in spec["deps"] if d.endswith(".py")}
    assert len(code_deps) == len([d for d in spec["deps"] if d.endswith(".py")])  # no duplicates
    assert code_deps == {script} | seecam_imports(REPO / script) - {"src/seecam/__init__.py"}


def test_stage_names_are_the_contract():
    assert list(STAGES)[: len(STAGES)] == [s for s in ["download", "train_cnn", "train_se", "evaluate", "explain",
                                                        "report"] if s in STAGES]


STAGE_MODULES = {  # stage -> the library module with its run_<stage>; stages/<stage>.py is the thin entry point
    "download": "src/seecam/download.py", "train": "src/seecam/train.py", "evaluate": "src/seecam/evaluate.py",
    "explain": "src/seecam/explain/run.py", "report": "src/seecam/report.py",
}


@pytest.mark.parametrize("stage", sorted(STAGE_MODULES))
def test_no_stage_module_imports_another(stage):
    # Shared code lives in small common modules; otherwise editing one stage's code reruns another stage.
    module = STAGE_MODULES[stage]
    assert seecam_imports(REPO / module) & set(STAGE_MODULES.values()) <= {module}


@pytest.mark.parametrize("stage", sorted(STAGE_MODULES))
def test_each_stage_script_calls_its_run_function(stage):
    module = STAGE_MODULES[stage].removeprefix("src/").removesuffix(".py").replace("/", ".")
    tree = ast.parse((REPO / "stages" / f"{stage}.py").read_text())
    imported = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert (module, f"run_{stage}") in imported


def module_level_imports(path: Path) -> set[str]:
    """The seecam modules `path` imports when it is imported: top-level statements, not functions' lazy imports
    nor `if TYPE_CHECKING:` blocks (annotations only)."""
    names: set[str] = set()
    todo = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.If | ast.Try):
            todo += [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seecam"):
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.startswith("seecam")}
    return {name for name in names if (REPO / "src" / f"{name.replace('.', '/')}.py").is_file()
            or (REPO / "src" / name.replace(".", "/") / "__init__.py").is_file()}


def test_no_import_cycles():
    # A cycle makes import order matter and a module unusable alone; `if TYPE_CHECKING:` imports do not run.
    modules = {".".join(p.relative_to(REPO / "src").with_suffix("").parts).removesuffix(".__init__"): p
               for p in (REPO / "src/seecam").rglob("*.py")}
    graph = {name: module_level_imports(path) - {name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, f"import cycle: {' -> '.join(path[path.index(name):] + [name])}"
        if name not in done:
            for imported in graph.get(name, ()):
                visit(imported, [*path, name])
            done.add(name)

    for name in sorted(graph):
        visit(name, [])
