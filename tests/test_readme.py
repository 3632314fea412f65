"""The README's set-up commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_COMMAND = 'pip install ".[test,onnx,torch]" && python -m pytest -q'
RUN_COMMAND = "pip install . && perfmodel roofline resnet50 --hw a100"


def test_readme_and_ci_share_the_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert TEST_COMMAND in readme and TEST_COMMAND in ci
    assert RUN_COMMAND in readme


def _blocks(text: str, lang: str) -> list[str]:
    return [b.split("```")[0] for b in text.split(f"```{lang}\n")[1:]]


def test_readme_python_examples_run():
    # The README's Python snippets use the public API (build_workload returns a Workload,
    # predict takes it): each one runs as written.
    blocks = _blocks((ROOT / "README.md").read_text(), "python")
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_config_format_table_documents_every_key():
    # workloads/README.md documents each key of a transformer config file: the ModelShape
    # fields (perfmodel.graph.shape says that README "documents each") plus a file's
    # metadata keys (perfmodel.zoo.transformer.META_FIELDS), and nothing else.
    from dataclasses import fields

    from perfmodel.graph.shape import ModelShape
    from perfmodel.zoo.transformer import META_FIELDS

    text = (ROOT / "workloads" / "README.md").read_text()
    table = text.split("## Transformer config format")[1].split("Minimal example")[0]
    documented = {line.split("`")[1] for line in table.splitlines()
                  if line.startswith("| `")}
    assert documented == {f.name for f in fields(ModelShape)} | set(META_FIELDS)


def test_docs_name_no_removed_api():
    # The records refactor removed these; a doc naming them sends readers to an ImportError.
    removed = ("TransformerConfig", "perfmodel.report.compress import Request",
               "perfmodel.bench.reference", "perfmodel.parallel.validation",
               "perfmodel.parallel.plan", "MemoryPlan")
    for doc in (ROOT / "README.md", ROOT / "workloads" / "README.md"):
        text = doc.read_text()
        assert [r for r in removed if r in text] == [], str(doc.relative_to(ROOT))
