"""The house rules of docs/architecture.md, checked by reading every import of the package (no module is run).

An import counts wherever it is written (module level or inside a function: a lazy import is still a dependency),
except under ``if TYPE_CHECKING:`` (typing only). Feature probes use ``importlib.util.find_spec`` and are not
imports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("llmrec_local", "serving")

#: Rooms of the house. Core is what every stage may use; it uses no stage.
CORE = ("llmrec_local.config", "llmrec_local.errors", "llmrec_local.hashing", "llmrec_local.seeding",
        "llmrec_local.compat", "llmrec_local.ids", "llmrec_local.cli", "llmrec_local.artifacts")
STAGES = ("llmrec_local.prepare", "llmrec_local.candidates", "llmrec_local.augment", "llmrec_local.embed",
          "llmrec_local.train", "llmrec_local.evaluate", "llmrec_local.report", "llmrec_local.run", "llmrec_local.tune",
          "serving")
MODEL_CODE = ("llmrec_local.models", "llmrec_local.graph")
LLM = ("llmrec_local.llm",)

#: Heavy library -> the one module allowed to import it.
HEAVY_OWNERS = {
    "vllm": ("llmrec_local.llm.vllm_backend",),
    "transformers": ("llmrec_local.llm.hf_backend",),
    "tokenizers": ("llmrec_local.llm.hf_backend",),
    "sentence_transformers": ("llmrec_local.embed.text",),
    "open_clip": ("llmrec_local.embed.image",),
    "torchvision": (),
    "fastapi": ("serving.app",),
    "tensorboard": ("llmrec_local.report.tensorboard",),
    "ray": ("llmrec_local.executors.ray_executor",),
    "optuna": ("llmrec_local.tune.search",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Absolute names of every module `tree` imports (outside TYPE_CHECKING blocks)."""
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                yield from visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # `from pkg import submodule`
                yield f"{target}.{alias.name}"
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(tree)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "_subprocess_site" in path.parts:
                continue  # a sitecustomize for vLLM's child processes, not part of the import graph
            name = _module_name(path)
            graph[name] = set(_imports(ast.parse(path.read_text()), name, path.name == "__init__.py"))
    return graph


GRAPH = _graph()


def _within(name: str, rooms: tuple[str, ...]) -> bool:
    return any(name == room or name.startswith(room + ".") for room in rooms)


def _violations(sources: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{mod} -> {dep}" for mod, deps in GRAPH.items() if _within(mod, sources)
                  for dep in deps if _within(dep, forbidden) and not _within(dep, sources))


def _stage_of(name: str) -> str | None:
    return next((room for room in STAGES if _within(name, (room,))), None)


def test_core_imports_no_stage_and_no_model_or_llm_code() -> None:
    assert _violations(CORE, STAGES + MODEL_CODE + LLM) == []


def test_data_imports_no_model_llm_or_training_code() -> None:
    assert _violations(("llmrec_local.data",), STAGES + MODEL_CODE + LLM) == []


def test_executors_import_no_stage_model_or_llm_code() -> None:
    """Executors run plain callables on batches; the stages (and the LLM pool) use them, never the reverse."""
    assert _violations(("llmrec_local.executors",), STAGES + MODEL_CODE + LLM + ("llmrec_local.data",)) == []


def test_models_take_plain_tensors() -> None:
    forbidden = STAGES + LLM + ("llmrec_local.data", "llmrec_local.artifacts")
    assert _violations(MODEL_CODE, forbidden) == []


def test_llm_backends_import_no_augmentation_model_or_training_code() -> None:
    assert _violations(LLM, STAGES + MODEL_CODE + ("llmrec_local.data",)) == []


def test_augmentation_reaches_models_only_through_the_candidates_artifact() -> None:
    forbidden = MODEL_CODE + ("llmrec_local.train", "llmrec_local.candidates", "llmrec_local.evaluate")
    assert _violations(("llmrec_local.augment",), forbidden) == []


def test_evaluation_imports_no_trainer() -> None:
    assert _violations(("llmrec_local.evaluate",), ("llmrec_local.train",)) == []


def test_serving_imports_no_trainer_or_augmentation() -> None:
    assert _violations(("serving",), ("llmrec_local.train", "llmrec_local.augment")) == []


def test_only_the_runner_runs_other_stages() -> None:
    """A stage may use core, the libraries (data, models, graph, llm) and, for shared algorithms, evaluate's
    ranking and metrics; running another stage is the pipeline runner's job (llmrec_local.run).

    A command-line entry module (``<stage>/__main__``) may call the runner: a command that needs earlier stages
    first (``augment`` without candidates trains the base model and ranks its candidates; without ``--data`` it
    prepares the bundled dataset) asks the runner's API for them, so the stage order still lives in one place and
    the stage module itself stays free of other stages. A stage's ``config`` module may use another stage's
    ``config`` classes: settings are data and running them is still the runner's job (the candidates stage's base
    model is a training ``ModelConfig``). The tune stage trains its trials through the runner's trial API
    (``llmrec_local.run.trials``) and may use nothing else of the runner."""
    shared = ("llmrec_local.evaluate.ranking", "llmrec_local.evaluate.metrics", "llmrec_local.evaluate.significance")
    found = []
    for mod, deps in GRAPH.items():
        own = _stage_of(mod)
        if own is None or own == "llmrec_local.run":
            continue
        allowed = shared + (("llmrec_local.run",) if mod.endswith(".__main__") else ())
        if own == "llmrec_local.tune":
            allowed += ("llmrec_local.run.trials",)
        if mod.endswith(".config"):
            allowed += tuple(f"{stage}.config" for stage in STAGES)
        found += [f"{mod} -> {dep}" for dep in deps
                  if _stage_of(dep) not in (None, own) and not _within(dep, allowed)]
    assert sorted(found) == []


def test_one_module_per_heavy_library() -> None:
    found = sorted(f"{mod} imports {dep}" for mod, deps in GRAPH.items() for dep in deps
                   if dep.split(".")[0] in HEAVY_OWNERS and mod not in HEAVY_OWNERS[dep.split(".")[0]]
                  )
    assert found == []


def test_no_import_cycles_between_modules() -> None:
    """Module-level import cycles (a package's ``__init__`` re-exporting its own modules does not count)."""
    ours = {m: {d for d in deps if d in GRAPH and d != m} for m, deps in GRAPH.items()}
    for mod in ours:  # a package's own __init__ importing its submodules is how re-exports work
        ours[mod] = {d for d in ours[mod] if not (d.startswith(mod + ".") and GRAPH.get(mod) is not None)}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(ours[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for mod in sorted(ours):
        if mod not in state:
            visit(mod)
    assert cycles == []


ENTRY_POINTS = ["llmrec_local.prepare", "llmrec_local.candidates", "llmrec_local.augment", "llmrec_local.embed",
                "llmrec_local.train", "llmrec_local.evaluate", "llmrec_local.report", "llmrec_local.run",
                "llmrec_local.tune",
                "llmrec_local.llm.smoke", "serving", "serving.recommend_server", "serving.llm_server"]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_entry_point_starts_clean(module: str) -> None:
    """Loading an entry point imports no heavy library: `--help` runs the compatibility layer's clean-start check
    (`llmrec_local.compat.require_clean_start`) in a fresh interpreter, and it must pass."""
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HeavyImportError" not in done.stderr


#: Artifact file name -> the module of its kind, the only one that may name it (design: one module per kind).
ARTIFACT_FILES = {
    **dict.fromkeys(("interactions.parquet", "split.parquet", "items.parquet", "users.parquet"),
                    "llmrec_local.artifacts.dataset"),
    **dict.fromkeys(("records.parquet", "failures.parquet", "responses.parquet", "usage.json"),
                    "llmrec_local.artifacts.augmentation"),
    **dict.fromkeys(("ids.parquet", "vectors.npy", "mask.npy"), "llmrec_local.artifacts.embeddings"),
    **dict.fromkeys(("config.json", "model.safetensors", "embeddings.safetensors", "train_log.jsonl",
                     "checkpoint.pt", "best_state.pt"), "llmrec_local.artifacts.run"),
    **dict.fromkeys(("metrics.json", "per_user.parquet"), "llmrec_local.artifacts.evaluation"),
    **dict.fromkeys(("best_params.json", "trials.parquet", "study.json", "study.db"), "llmrec_local.artifacts.tune"),
}
if (ROOT / "llmrec_local" / "artifacts" / "candidates.py").is_file():  # the candidates kind is moving there
    ARTIFACT_FILES["candidates.parquet"] = "llmrec_local.artifacts.candidates"
#: Code that handles model folders (Hugging Face, sentence-transformers, open_clip), whose ``config.json`` and
#: ``model.safetensors`` are the model's own files, not a run's.
MODEL_FOLDER_CODE = ("llmrec_local.llm", "llmrec_local.embed.text", "llmrec_local.embed.minilm",
                     "llmrec_local.embed.image")
MODEL_FOLDER_FILES = ("config.json", "model.safetensors")


def _string_constants(tree: ast.AST) -> Iterator[str]:
    """Every string constant of `tree` except docstrings (prose may mention a file; code may not name it)."""
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value


def test_one_module_names_each_artifact_file() -> None:
    """A constant equal to an artifact's file name (or ending in ``/<name>``) appears only in its kind's module
    under ``llmrec_local/artifacts/``; every other module asks that module's writers, readers or path helpers."""
    found = []
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            module = _module_name(path)
            for value in set(_string_constants(ast.parse(path.read_text()))):
                for name, owner in ARTIFACT_FILES.items():
                    if value != name and not value.endswith("/" + name):
                        continue
                    if module == owner or (name in MODEL_FOLDER_FILES and _within(module, MODEL_FOLDER_CODE)):
                        continue
                    found.append(f"{module} names {name!r} (owned by {owner})")
    assert sorted(found) == []
