"""The example notebooks (``examples/*.ipynb``): committed without outputs, and each one runs
top to bottom in a fresh kernel without an error (nbclient), in a temporary working directory
so that it writes nothing into the repository.

Skipped only where nbclient is not installed and ``PERFMODEL_CI`` is not set; CI sets it
(``.ci/run``), so there a missing nbclient fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
EXPECTED = ("01_cnn_zoo_roofline", "02_llm_serving_whatif", "03_npu_design_study",
            "04_training_cluster_sizing")
CELL_TIMEOUT_S = 600
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the kernel's coloured tracebacks, for a plain message


def _runner():
    """(nbformat, nbclient), or a skip where they are missing outside CI."""
    try:
        import nbclient
        import nbformat
    except ImportError as exc:
        if os.environ.get("PERFMODEL_CI"):
            pytest.fail(f"PERFMODEL_CI is set and the notebooks cannot run: {exc} "
                        "(pip install '.[test]')")
        pytest.skip("nbclient / nbformat not installed: pip install '.[test]'")
    return nbformat, nbclient


def test_the_example_notebooks_are_there():
    assert {p.stem for p in NOTEBOOKS} >= set(EXPECTED)
    assert (EXAMPLES / "README.md").is_file()
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for p in NOTEBOOKS:  # each notebook has its line in the examples' README
        assert p.name in readme, p.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code cells"
    for i, cell in enumerate(code):
        assert cell["outputs"] == [], f"{path.name}: code cell {i} has outputs"
        assert cell["execution_count"] is None, f"{path.name}: code cell {i} was executed"
    assert nb["cells"][0]["cell_type"] == "markdown", "open with what the study answers"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nbformat, nbclient = _runner()
    nb = nbformat.read(path, as_version=4)
    before = sorted(EXAMPLES.rglob("*"))
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    failure = None
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # the cell and its traceback
        failure = ANSI.sub("", str(exc))
    if failure is not None:  # outside the except: the message once, in plain text
        pytest.fail(f"{path.name}: {failure}", pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert sorted(EXAMPLES.rglob("*")) == before, "the notebook wrote into examples/"
