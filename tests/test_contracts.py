"""Contracts: the public API is pinned, and the layer order of DESIGN.md holds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import perfmodel

PACKAGE = Path(perfmodel.__file__).parent

PUBLIC = {
    "DeviceSpec", "GraphBuilder", "MeasurementError", "ModelGraph", "Op", "OpCost", "OpKind",
    "PerfModelError", "PlanError", "Prediction", "ShapeError", "SpecError", "TensorSpec",
    "UnknownNameError", "UnsupportedOpError", "__version__", "build_workload", "list_devices",
    "load_device", "load_model", "models", "predict", "roofline",
}
PUBLIC |= {"SystemSpec", "collective_time", "list_systems", "load_system",
           "predict_collective", "read_nccl_tests", "compare_collectives",
           "fit_collectives"}  # collectives (issue 5)
PUBLIC |= {"collective_sweep", "compare_algorithms", "check_collectives"}  # thin CLI
# one model of a run: the shape, job and plan records, the workload, memory and step models
PUBLIC |= {"ModelShape", "Job", "ParallelPlan", "Workload", "footprint", "memory_report",
           "predict_step", "search_plans", "device_table", "model_table"}
# hardware never measured: the architectures' kernel figures, leave-one-device-out
PUBLIC |= {"load_architectures", "leave_one_device_out"}
# models users bring: torch modules and ONNX files
PUBLIC |= {"from_torch", "load_onnx"}
# inference end to end through an engine (names resolved at the API edge)
PUBLIC |= {"infer", "serve", "serve_search", "sensitivity"}
# what-if studies in notebooks: grids of predictions
PUBLIC |= {"sweep", "plot"}
# a design review of a chip: one HTML report (the API edge)
PUBLIC |= {"review"}
# design-space exploration of a hypothetical chip, hardware-aware model search (the API edge)
PUBLIC |= {"explore", "model_search"}

# docs/architecture.md "Layers": each package may import only from those listed for it.
# errors, units and files sit under everything. Differences from the first DESIGN.md
# table, each justified in docs/architecture.md: importers sit below zoo (a config.json
# becomes a ModelShape; the zoo builds it), compress may price its strategies with
# analytic (compress.tradeoff), bench reads a ModelGraph (torch_e2e), validate runs the
# training-step model (validate.training). No package imports zoo but the CLI: names
# become graphs at the edge.
BASE = {"errors", "units", "files", "progress"}
ALLOWED = {
    "errors": set(), "units": {"errors"}, "files": {"errors"}, "progress": set(),
    "hardware": BASE,
    "graph": BASE,
    "importers": BASE | {"graph"},
    "zoo": BASE | {"graph", "importers"},
    "workload": BASE | {"graph"},
    "analytic": BASE | {"hardware", "workload", "graph"},
    "compress": BASE | {"graph", "workload", "hardware", "analytic"},
    "sim": BASE | {"hardware", "analytic", "workload", "graph"},
    "parallel": BASE | {"hardware", "workload", "analytic", "sim", "graph"},
    "bench": BASE | {"hardware", "graph"},
    "inference": BASE | {"hardware", "workload", "analytic", "graph"},
    "serving": BASE | {"hardware", "workload", "analytic", "graph", "inference"},
    "validate": BASE | {"hardware", "workload", "analytic", "bench", "graph", "parallel",
                        "inference"},
    # the API edge beside __init__: catalogs of devices and models (names become graphs)
    "catalog": BASE | {"hardware", "graph", "workload", "zoo"},
    # the API edge too: pm.infer turns names into records for perfmodel.inference
    "inference_api": BASE | {"hardware", "graph", "workload", "inference", "serving", "zoo"},
    "study_api": BASE | {"hardware", "graph", "workload", "analytic", "inference", "study",
                         "zoo"},
    # the API edge too: pm.review prices a suite on devices and writes the HTML report
    "review_api": BASE | {"hardware", "graph", "workload", "analytic", "catalog", "study_api",
                          "report", "zoo", "study"},
    # the API edge too: pm.explore reads a workload suite (review_api.load_suite) and builds
    # models, pm.model_search compresses them
    "explore_api": BASE | {"hardware", "graph", "workload", "compress", "study", "review_api",
                           "zoo"},
    "study": BASE | {"hardware", "workload", "analytic", "sim", "parallel", "compress", "graph",
                     "bench", "validate", "inference", "serving"},
    # pm.plot: the report's figures returned to a notebook (or saved)
    "plot": BASE | {"analytic", "hardware", "report"},
    "report": BASE | {"analytic", "hardware", "workload", "graph", "sim", "parallel", "compress",
                      "validate", "bench", "inference", "serving"},
}
# The CLI is the top: it may import every package.
ALLOWED["cli"] = set(ALLOWED) | BASE


def test_public_api_is_pinned():
    assert set(perfmodel.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(perfmodel, name)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "perfmodel."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("perfmodel.")}
    return out


def test_layer_order():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        layer = rel.parts[0].removesuffix(".py")
        if layer in ("__init__", "__main__"):
            continue
        allowed = ALLOWED[layer] | {layer}
        for imported in _imports(path) - allowed:
            bad.append(f"{rel} imports perfmodel.{imported}")
    assert not bad, bad


HEAVY = ("pandas", "networkx", "simpy", "matplotlib", "torch")


def _loaded_by(*argv: str) -> list[str]:
    """The heavy packages a fresh interpreter has imported after running ``argv``."""
    import subprocess
    import sys
    code = ("import runpy, sys; sys.argv = ['perfmodel', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('perfmodel', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    return eval(out.stderr.strip().splitlines()[-1])  # the list printed last


@pytest.mark.slow
def test_import_perfmodel_loads_no_heavy_package():
    # the public names are served on first use (PEP 562): import perfmodel pays for none
    import subprocess
    import sys
    code = f"import sys, perfmodel; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("argv, allowed", [
    (("--help",), set()),                     # imports no command module
    (("hw",), {"pandas"}),                    # a table: pandas, but no simulator or graph
    (("roofline", "resnet50", "--hw", "a100"), {"pandas"}),
])
def test_commands_load_only_what_they_use(argv, allowed):
    assert set(_loaded_by(*argv)) <= allowed


def test_no_subpackage_shadows_a_public_function():
    """Importing ``perfmodel.X`` sets the attribute ``perfmodel.X`` to the module, so a
    package named like a public function (``serve``, ``sweep``, ``infer``) would replace
    ``pm.serve`` the second time it is called. Every module imported, every public name is
    still what ``__all__`` promises (only ``plot`` is a module)."""
    import importlib
    import pkgutil
    import types

    for mod in pkgutil.walk_packages(perfmodel.__path__, "perfmodel."):
        if ".cuda" in mod.name or mod.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError:  # an optional extra (onnx, torch) not installed here
            continue
    modules = {n for n in PUBLIC if isinstance(getattr(perfmodel, n), types.ModuleType)}
    assert modules == {"plot"}
