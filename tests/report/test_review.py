"""perfmodel review: the design-review HTML report (content, escaping, no network, the
does-not-fit verdict, the summary's speedup, overwrite refusal, bad suite files)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import perfmodel as pm
from perfmodel.cli.main import main
from perfmodel.errors import PerfModelError
from perfmodel.files import data_dir
from perfmodel.report.review import SECTIONS, Section, render_review
from perfmodel.review_api import load_suite, review, write_review
from perfmodel.units import format_si

EVIL = "<script>alert(1)</script>"
SUITE = f"""\
- name: resnet50-b1
  model: resnet50
  batch: 1
- name: "bert {EVIL}"
  model: bert-large
  batch: 1
  seq: 384
- name: llama-3-70b-decode-b1
  model: llama-3-70b
  phase: decode
  batch: 1
  seq: 4096
"""


def write_suite(folder: Path, text: str = SUITE, name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def evil_device(folder: Path) -> Path:
    """The shipped H100 spec renamed with markup in its names."""
    text = (data_dir("hw_specs") / "h100-sxm5-80gb.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^name: .*$", f'name: "npu{EVIL}"', text)
    text = re.sub(r"(?m)^display_name: .*$", 'display_name: "My <b>NPU</b> & co"', text)
    text = re.sub(r"(?m)^aliases: .*$", "aliases: []", text)
    path = folder / "npu.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("review")


@pytest.fixture(scope="module")
def data(folder):
    return review("h100", baseline=["a100", "mi300x"], workloads=write_suite(folder))


@pytest.fixture(scope="module")
def page(data) -> str:
    return render_review(data)


@pytest.fixture(scope="module")
def evil_page(folder) -> str:
    return render_review(review(evil_device(folder), baseline=["a100"],
                                workloads=write_suite(folder)))


def section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}">')[1].split("</section>")[0]


def test_user_strings_are_escaped(evil_page):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evil_page  # the names are shown
    assert "<script>alert" not in evil_page                  # never as markup
    assert "<b>NPU</b>" not in evil_page and "My &lt;b&gt;NPU&lt;/b&gt; &amp; co" in evil_page
    assert evil_page.count("<script") == 1                   # the page's own figure counter


def test_no_network_references(page, evil_page):
    for html in (page, evil_page):
        fetched = re.findall(r"""(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]*)""",
                             html, re.IGNORECASE)
        assert fetched == []
        assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", html, re.IGNORECASE)
        assert "<link" not in html and "<img" not in html and "<iframe" not in html


def test_the_70b_decode_does_not_fit_and_gets_no_latency(data, page):
    p = data.predictions.set_index(["device", "workload"])
    run = p.loc[("h100-sxm5-80gb", "llama-3-70b-decode-b1")]
    assert run["status"] == "does not fit" and not run["fits"]
    assert np.isnan(run["latency_s"]) and np.isnan(run["throughput_per_s"])
    assert data.summary.set_index("workload").loc["llama-3-70b-decode-b1",
                                                  "candidate_status"] == "does not fit"
    # the latency it would have, were there memory, is nowhere in the report
    graph = pm.load_model("llama-3-70b")
    wl = pm.build_workload(graph, batch=1, seq=4096, dtype="fp16", phase="decode")
    would = pm.predict(wl, pm.load_device("h100")).summary["latency_s"]
    assert format_si(would, "s") not in page
    row = next(r for r in section(page, "summary").split("<tr>") if "llama-3-70b" in r)
    assert "does not fit" in row and "needs 142 GB of memory" in row
    assert "does not fit on <b>h100-sxm5-80gb</b>" in section(page, "memory")
    # a device with the memory runs it
    assert p.loc[("mi300x", "llama-3-70b-decode-b1"), "status"] == "ok"


def test_speedup_is_the_ratio_of_the_predicted_latencies(data, page):
    wl = pm.build_workload(pm.load_model("resnet50"), batch=1, dtype="fp16")
    latency = {hw: pm.predict(wl, pm.load_device(hw)).summary["latency_s"]
               for hw in ("h100", "a100", "mi300x")}
    best = min(latency["a100"], latency["mi300x"])
    row = data.summary.set_index("workload").loc["resnet50-b1"]
    assert row["speedup"] == pytest.approx(best / latency["h100"], rel=1e-12)
    assert row["best_baseline"] == min(("a100-sxm4-80gb", "mi300x"),
                                       key=lambda n: latency[n.split("-")[0]])
    shown = next(r for r in section(page, "summary").split("<tr>") if "resnet50-b1" in r)
    assert f"{best / latency['h100']:.2f}×" in shown


def test_every_section_and_figure_is_there(data, page):
    for s in SECTIONS:
        assert f'<section id="{s.id}"><h2>{s.title}</h2>' in page
        assert f'href="#{s.id}"' in page
    assert page.count('<figure class="chart"><svg') == 6     # one per chart, all inline SVG
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))                          # figures share no ids
    assert "perfmodel " + pm.__version__ in page and "pm.review(" in page  # the footer
    for figure in ("compute.tensor_TFLOPS.fp16", "memory.bandwidth_GBps", "power.tdp_W"):
        assert f"<code>{figure}</code>" in section(page, "specs")
    assert "NV-PROD-COPY" in section(page, "specs")           # each figure's source
    assert "roofline: per op max(compute, memory)" in section(page, "assumptions")
    # the workload the candidate runs longest (the 70B decode does not fit on an H100)
    mine = data.predictions[(data.predictions["device"] == "h100-sxm5-80gb")
                            & data.predictions["latency_s"].notna()]
    assert data.sensitivity_workload == mine.loc[mine["latency_s"].idxmax(), "workload"]


def test_a_section_plugs_in(data):
    extra = Section("front", "Design-space front", lambda d: f"<p>{len(d.devices)}</p>")
    html = render_review(data, sections=[SECTIONS[0], extra])
    assert '<section id="front"><h2>Design-space front</h2>\n<p>3</p>' in html
    assert 'id="roofline"' not in html


def test_no_intervals_says_so(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "perfmodel.validate.intervals", None)  # ImportError
    html = render_review(data, sections=[s for s in SECTIONS if s.id == "performance"])
    assert "no intervals available" in html


def test_intervals_are_shown_where_there_are_some(data, monkeypatch):
    fake = types.ModuleType("perfmodel.validate.intervals")

    def latency_band(latency_s, kind="roofline", phase=None, level=0.8):
        assert kind == "roofline" and level == 0.8
        if phase == "decode":
            raise PerfModelError("no decode measurements")
        return np.asarray(latency_s) * 0.5, np.asarray(latency_s) * 2.0

    fake.latency_band = latency_band
    monkeypatch.setitem(sys.modules, "perfmodel.validate.intervals", fake)
    html = render_review(data, sections=[s for s in SECTIONS if s.id == "performance"])
    lat = data.predictions.set_index(["device", "workload"]).loc[
        ("h100-sxm5-80gb", "resnet50-b1"), "latency_s"]
    assert f"({format_si(lat * 0.5, 's')} – {format_si(lat * 2, 's')})" in html
    assert "80% intervals" in html and "none for decode" in html
    assert "no intervals available" not in html


def test_overwrite_refused_without_force(data, tmp_path):
    out = write_review(data, tmp_path / "r.html")
    before = out.read_text(encoding="utf-8")
    out.write_text("mine", encoding="utf-8")
    with pytest.raises(PerfModelError, match="already exists"):
        write_review(data, out)
    assert out.read_text(encoding="utf-8") == "mine"
    write_review(data, out, overwrite=True)
    assert out.read_text(encoding="utf-8") == before          # the same page, byte for byte
    with pytest.raises(PerfModelError, match="does not end in .html"):
        write_review(data, tmp_path / "r.pdf")


def test_shipped_suite():
    suite = load_suite()
    assert list(suite["name"]) == [
        "resnet50-b1", "resnet50-b64", "bert-large-b1", "llama-3-8b-prefill",
        "llama-3-8b-decode-b1", "llama-3-8b-decode-b32", "llama-3-70b-decode-b1"]
    assert suite["dtype"].isna().all()                        # each device's default


def test_suite_defaults_and_relative_model_files(tmp_path):
    (tmp_path / "tiny.yaml").write_text(
        (data_dir("workloads") / "gpt2.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    suite = load_suite(write_suite(tmp_path, "- model: tiny.yaml\n- model: resnet50\n"
                                             "  dtype: FP16\n"))
    assert list(suite["name"]) == ["tiny.yaml-inference-b1", "resnet50-inference-b1"]
    assert list(suite["dtype"]) == [None, "fp16"] and list(suite["batch"]) == [1, 1]
    assert suite.loc[0, "source"] == str(tmp_path / "tiny.yaml")


# --- the command line ------------------------------------------------------------------

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_the_report(capsys, tmp_path, folder):
    suite = write_suite(tmp_path, "- name: r\n  model: resnet50\n")
    out = tmp_path / "r.html"
    code, text, err = run_cli(capsys, "--hw", "h100", "--baseline", "a100", "--workloads",
                              str(suite), "--title", "H100 <review>", "-o", str(out),
                              "--format", "json")
    assert code == 0, err
    assert '"speedup"' in text and "wrote" in err
    html = out.read_text(encoding="utf-8")
    assert "<title>H100 &lt;review&gt;</title>" in html
    assert "perfmodel review --hw h100 --baseline a100" in html    # the footer
    # exists now: refused (exit 2, one line), the file left alone, then --force
    code, _, err = run_cli(capsys, "--hw", "h100", "--baseline", "a100", "--workloads",
                           str(suite), "-o", str(out))
    assert code == 2 and "already exists" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1 and out.read_text(encoding="utf-8") == html


BAD_SUITES = {
    "unknown key": ("- model: resnet50\n  bach: 4\n", "unknown key 'bach' (did you mean "
                                                      "'batch'?)"),
    "missing model": ("- name: x\n  batch: 2\n", "workload 1 (x): model missing"),
    "non-positive batch": ("- model: resnet50\n  batch: 0\n", "batch must be a positive "
                                                              "integer, got 0"),
    "batch not a number": ("- model: resnet50\n  batch: lots\n", "got 'lots'"),
    "negative seq": ("- model: bert-large\n  seq: -5\n", "seq must be a positive integer"),
    "unknown phase": ("- model: resnet50\n  phase: decoding\n", "phase 'decoding' is not"),
    "unknown dtype": ("- model: resnet50\n  dtype: fp61\n", "unknown dtype 'fp61'"),
    "duplicate name": ("- {name: a, model: resnet50}\n- {name: a, model: bert-large}\n",
                       "workload name 'a' used 2 times"),
    "malformed YAML": ("- model: [resnet50\n", "malformed YAML"),
    "not a list": ("model: resnet50\n", "a non-empty YAML list"),
    "empty file": ("", "got nothing"),
    "entry not a mapping": ("- resnet50\n", "a mapping of name, model"),
    "unknown model": ("- model: resnet5O\n", "workload 'resnet5O-inference-b1': unknown "
                                              "model"),
    "seq past the context": ("- {model: llama-3-8b, phase: decode, seq: 100000}\n",
                             "past llama-3-8b's trained context"),
}


@pytest.mark.parametrize("case", list(BAD_SUITES))
def test_bad_suite_is_one_line_exit_2(capsys, tmp_path, case):
    text, expected = BAD_SUITES[case]
    suite = write_suite(tmp_path, text)
    code, out, err = run_cli(capsys, "--hw", "h100", "--baseline", "a100", "--workloads",
                             str(suite), "-o", str(tmp_path / "r.html"))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("perfmodel: error:"), err
    assert "Traceback" not in err and expected in err, err
    assert not (tmp_path / "r.html").exists()


def test_binary_and_missing_suite_files_are_one_line_exit_2(capsys, tmp_path):
    binary = tmp_path / "suite.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    for path, expected in ((binary, "not a UTF-8 text file"),
                           (tmp_path / "nowhere.yaml", "file not found")):
        code, _, err = run_cli(capsys, "--hw", "h100", "--baseline", "a100", "--workloads",
                               str(path), "-o", str(tmp_path / "r.html"))
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv, expected", [
    (["--hw", "h10O", "--baseline", "a100"], "did you mean"),
    (["--hw", "h100", "--baseline", "a1OO"], "unknown device"),
    (["--hw", "h100", "--baseline", " , "], "--baseline names no device"),
    (["--hw", "h100", "--baseline", "h100"], "given twice"),
    (["--hw", "h100", "--baseline", "a100", "--sensitivity-workload", "resnet50-b2"],
     "did you mean 'resnet50-b1'"),
])
def test_bad_names_are_one_line_exit_2(capsys, tmp_path, argv, expected):
    suite = write_suite(tmp_path, "- name: resnet50-b1\n  model: resnet50\n")
    code, _, err = run_cli(capsys, *argv, "--workloads", str(suite), "-o",
                           str(tmp_path / "r.html"))
    assert code == 2 and expected in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_unsupported_dtype_is_shown_not_raised(tmp_path):
    data = review("h100", baseline=["a100"],  # the A100 has no fp8 tensor cores
                  workloads=write_suite(tmp_path, "- {name: q, model: resnet50, dtype: fp8}\n"))
    p = data.predictions.set_index("device")
    assert p.loc["a100-sxm4-80gb", "status"] == "unsupported"
    assert "fp8" in p.loc["a100-sxm4-80gb", "note"]
    assert pd.isna(data.summary.loc[0, "speedup"])
    assert "unsupported" in render_review(data, sections=SECTIONS[:1])


def test_design_space_section(data, page):
    """Bandwidth and the fp16 peak each from half to twice the H100's spec, 5 x 5 designs;
    the cost is their sum relative to the spec, so the spec itself costs 2 and has a
    latency ratio of 1, and no design on the front is beaten on both cost and latency."""
    e = data.design
    assert e is not None and len(e.points) == 25
    # log-spaced: the middle of 5 points from x / 2 to 2 x is x itself
    spec = e.points[np.isclose(e.points["memory.bandwidth_GBps"], 3350)
                    & np.isclose(e.points["compute.tensor_TFLOPS.fp16"], 989.5)].iloc[0]
    assert spec["cost"] == pytest.approx(2.0) and spec["latency_ratio"] == pytest.approx(1.0)
    front = e.front
    for _, r in front.iterrows():
        better = e.points[(e.points["cost"] <= r["cost"])
                          & (e.points["latency_ratio"] <= r["latency_ratio"])
                          & ((e.points["cost"] < r["cost"])
                             | (e.points["latency_ratio"] < r["latency_ratio"]))]
        assert better.empty
    assert "Pareto front, cheapest first" in section(page, "design")
