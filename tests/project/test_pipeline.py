"""dvc.yaml is the map of the project: each stage's deps are exactly the code it runs."""

import ast
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from seecam.paths import explain_outputs

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The file of seecam module `name` (a package's __init__.py), None if `name` is no module (a function)."""
    folder = REPO / "src" / name.replace(".", "/")
    for candidate in (folder.with_suffix(".py"), folder / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports(path: Path) -> set[str]:
    """The seecam modules `path` imports: every import statement wherever it is (top level, in a function, under
    `if TYPE_CHECKING:`), with the packages above each that importing it runs first."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: a relative import; write it absolute so these tests see it"
            if node.module.split(".")[0] == "seecam":
                names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.split(".")[0] == "seecam"}
    packages = {name.rsplit(".", depth)[0] for name in names for depth in range(1, name.count(".") + 1)}
    return {name for name in names | packages if module_file(name)}


def seecam_imports(path: Path) -> set[str]:
    """Files under src/seecam/ that `path` imports, transitively."""
    seen: set[str] = set()
    todo = [path]
    while todo:
        for name in imports(todo.pop()):
            file = module_file(name)
            if str(file.relative_to(REPO)) not in seen:
                seen.add(str(file.relative_to(REPO)))
                todo.append(file)
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


def test_no_import_cycles():
    # A cycle makes import order matter and a module unusable alone. A function's lazy import and an
    # `if TYPE_CHECKING:` one count too: each still makes the two modules depend on each other.
    modules = {".".join(p.relative_to(REPO / "src").with_suffix("").parts).removesuffix(".__init__"): p
               for p in (REPO / "src/seecam").rglob("*.py")}
    graph = {name: imports(path) - {name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, f"import cycle: {' -> '.join(path[path.index(name):] + [name])}"
        if name not in done:
            for imported in sorted(graph.get(name, ())):
                visit(imported, [*path, name])
            done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_report_reads_the_verdicts_record_alone():
    """Issue 29: the report stage reran on edits to sweep.py, through the verdict's MLflow queries. It shows
    verdict.json: the verdict's record is all of the verdict it imports, and the record imports only stats."""
    report = seecam_imports(REPO / "src/seecam/report.py")
    assert {path for path in report if "/verdict" in path} == {
        "src/seecam/verdict/__init__.py", "src/seecam/verdict/record.py", "src/seecam/plots/verdict.py"}
    assert "src/seecam/sweep.py" not in report
    assert imports(REPO / "src/seecam/verdict/record.py") == {"seecam", "seecam.stats"}


def declared(stage: str) -> set[str]:
    """What `stage` declares it writes: outs, metrics and plots, each a file or a folder."""
    spec = STAGES[stage]
    return {next(iter(entry)) if isinstance(entry, dict) else entry
            for kind in ("outs", "metrics", "plots") for entry in spec.get(kind, [])}


@pytest.mark.parametrize("names", [["cnn", "se"], ["cnn", "se", "se8", "eca"]])
def test_every_file_explain_writes_is_declared_whatever_the_models(names):
    """Issue 25: feature_maps_se8.png was no DVC output, so `git add -A` put it in git."""
    outs = declared("explain")
    for path in explain_outputs(names):
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
