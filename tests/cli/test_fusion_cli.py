"""perfmodel roofline --fusion none|epilogue."""

from __future__ import annotations

import json

from perfmodel.cli.main import main


def _json(capsys, *extra):
    code = main(["roofline", "resnet50", "--hw", "a100", "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_fusion_flag_json(capsys):
    none = _json(capsys)
    fused = _json(capsys, "--fusion", "epilogue")
    assert none["assumptions"]["fusion"].startswith("none")
    assert fused["assumptions"]["fusion"].startswith("epilogue")
    # resnet50: the convs carry their bn / relu / residual add in their kernels.
    assert fused["summary"]["num_kernels"] < none["summary"]["num_kernels"]
    assert fused["summary"]["latency_s"] < none["summary"]["latency_s"]
    assert fused["summary"]["flops"] == none["summary"]["flops"]  # FLOPs still count


def test_fusion_flag_bad_value_exit_2(capsys):
    try:
        code = main(["roofline", "resnet50", "--hw", "a100", "--fusion", "vertical"])
    except SystemExit as e:  # argparse choices
        code = e.code
    assert code == 2
    assert "fusion" in capsys.readouterr().err
