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


def declared(stage: str) -> set[str]:
    """What `stage` declares it writes: outs, metrics and plots, each a file or a folder."""
    spec = STAGES[stage]
    return {next(iter(entry)) if isinstance(entry, dict) else entry
            for kind in ("outs", "metrics", "plots") for entry in spec.get(kind, [])}


@pytest.mark.parametrize("names", [["cnn", "se"], ["cnn", "se", "se8", "eca"]])
def test_every_file_explain_writes_is_declared_whatever_the_models(names):
    """Issue 25: feature_maps_se8.png was no DVC output, so `git add -A` put it in git."""
    from seecam.explain.run import outputs

    outs = declared("explain")
    for path in outputs(names):
        assert any(path == Path(out) or Path(out) in path.parents for out in outs), path


def test_the_plots_draw_every_model_from_files_no_model_names():
    """Issue 25: the plots' `y:` maps named cnn's and se's files, so `dvc plots show` left a third model out."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    sources = {path for plot in pipeline["plots"] for props in plot.values() for path in props["y"]}
    assert sources and all("/train/" not in path for path in sources), sources
    assert sources <= declared("evaluate")  # written by the stage that reads every model's history
    for plot in pipeline["plots"]:
        (props,) = plot.values()
        assert (REPO / ".dvc/plots" / f"{props['template']}.json").is_file()


def test_every_train_stage_is_the_same_stage_for_its_model():
    """A variant's stage is train_cnn's with its name: the same code (one YAML anchor), the shared params and
    its own block, the outputs train writes for it."""
    from seecam.paths import train_outputs

    trains = {name.removeprefix("train_"): spec for name, spec in STAGES.items() if name.startswith("train_")}
    assert list(trains) == ["cnn", "se"]
    shared = [p for p in trains["cnn"]["params"] if p != "models.cnn"]
    for name, spec in trains.items():
        assert spec["cmd"] == f"python stages/train.py {name}"
        assert spec["deps"] == trains["cnn"]["deps"]
        assert spec["params"] == [*shared, f"models.{name}"]
        assert spec["outs"] == [str(path) for path in train_outputs(name)]
