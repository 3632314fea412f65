"""Every case of the bad-input catalogue (tests/cli/bad_inputs.py): exit 2, exactly one line
on stderr naming the problem and its fix, no traceback."""

from __future__ import annotations

import pytest

from perfmodel.cli.main import main
from tests.cli.bad_inputs import CASES, FILES


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    for name, data in FILES.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return d


def test_the_catalogue_is_large():
    assert len(CASES) >= 150


@pytest.mark.parametrize("argv, needle", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_clear_line_and_exit_2(capsys, tmp, argv, needle):
    args = [a.replace("{tmp}", str(tmp)) for a in argv]
    try:
        code = main(args)
    except SystemExit as exc:      # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (code, err[-500:])
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("perfmodel: error:"), err
    assert needle.lower() in lines[0].lower(), lines[0]
