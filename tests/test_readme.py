"""The README's set-up commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_COMMAND = 'pip install ".[test]" && python -m pytest -q'
RUN_COMMAND = "pip install . && perfmodel roofline resnet50 --hw a100"


def test_readme_and_ci_share_the_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert TEST_COMMAND in readme and TEST_COMMAND in ci
    assert RUN_COMMAND in readme
