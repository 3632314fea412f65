"""Published reference measurements, converted to the Measurement schema and shipped.

The source is ``shared/reference/measurements/{gemm,membw,inference}.csv`` (published A100 and
V100 figures, one row each with its citation). ``convert_reference`` turns them into our schema,
keeping ``source``, ``locator``, ``quote_or_note``, ``confidence`` and ``row_id``; each
interpretation made on the way (a size not stated in the source, a dtype read from the achieved
rate, the spec that prices a row) is appended to ``quote_or_note`` as ``CONVERTED: ...``.
The converted files ship as ``perfmodel/_data/measurements/reference/*.csv`` (from the
repository's ``measurements/reference/``); ``load_reference("a100")`` reads them back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from perfmodel.bench.measurement import check_measurements, measurement_frame, read_measurements
from perfmodel.errors import MeasurementError, PerfModelError, UnknownNameError, did_you_mean
from perfmodel.files import data_dir
from perfmodel.hardware.load import load_device

__all__ = ["convert_reference", "load_reference", "reference_dir", "REFERENCE_DEVICES",
           "spec_for_device", "write_reference", "measurement_rows"]

CITATION = ["source", "locator", "quote_or_note", "confidence", "row_id"]

# Device text in the published rows -> the shipped spec that prices them. First match wins.
DEVICE_SPECS: tuple[tuple[str, str, str], ...] = (
    (r"A800", "a100-sxm4-80gb", "A800 80GB SXM: A100 80GB compute and memory (NVLink cut only)"),
    (r"A100 PCIe", "a100-pcie-80gb", ""),
    (r"A100.*40\s?Gi?B", "a100-sxm4-40gb", ""),
    (r"^Nvidia A100 GPU$", "a100-sxm4-40gb",
     "LLM-Inference-Bench ran on ALCF Polaris (4x A100 SXM4 40GB per node; its A100 READMEs "
     "load /soft/modulefiles): priced as a100-sxm4-40gb"),
    (r"A100", "a100-sxm4-80gb", ""),
    (r"V100.*16\s?G", "v100-sxm2-16gb", ""),
    (r"V100", "v100-sxm2-32gb", "V100 memory size not stated: priced as v100-sxm2-32gb "
                                "(16 and 32 GB parts have the same 900 GB/s and peaks)"),
)
# --reference NAME -> spec names whose rows it selects
REFERENCE_DEVICES = {"a100": ("a100-sxm4-80gb", "a100-sxm4-40gb", "a100-pcie-80gb"),
                     "v100": ("v100-sxm2-16gb", "v100-sxm2-32gb"), "a30": ("a30",),
                     "a10": ("a10",), "t4": ("t4",)}
REFERENCE_DEVICES["all"] = tuple(h for hs in REFERENCE_DEVICES.values() for h in hs)

# gpu-benches gpu-stream: max_buffer_size = 128 Mi + 2 doubles per array (gpu-stream/main.cu,
# te42kyfo/gpu-benches @ a7dc559c); bytes per kernel = streams x that. Streams per kernel as
# main.cu counts them.
GPU_STREAM_ARRAY_BYTES = (128 * 1024 * 1024 + 2) * 8
GPU_STREAM_STREAMS = {"init": 1, "read": 1, "scale": 2, "triad": 3, "1pt": 2, "3pt": 2,
                      "5pt": 2}
# BabelStream's default array: 2^25 doubles (BabelStream main.cpp ARRAY_SIZE); arrays per
# kernel: Copy/Mul/Dot 2, Add/Triad 3.
BABELSTREAM_ARRAY_BYTES = 2**25 * 8
BABELSTREAM_ARRAYS = {"copy": 2, "mul": 2, "add": 3, "triad": 3, "dot": 2}
# gpu-l2-cache launches blockCount = 100,000 blocks, each summing its "per-block data"; the
# blocks share a data set of that times blockRun, and "Eff. bw" = per-block data x blockCount
# / time (gpu-l2-cache/main.cu, te42kyfo/gpu-benches @ 0232b35). gpu-benches prints
# bytes / 1024 as "kB".
GPU_L2_BLOCKS = 100_000
GPU_BENCHES_KB = 1024

# Published tables whose device the collected row mislabels: NVIDIA DeepLearningExamples'
# PaddlePaddle RN50v1.5 README lists, in this order, native Paddle inference on A100 80GB,
# then "Paddle-TRT performance" on DGX A100 (1x A100 80GB), on A30 (1x A30 24GB) and on A10
# (1x A10 24GB). The collected rows carry the first heading for all four; the README line
# (in the locator) says which table a row is from, and the rows bear it out (at batch 128
# the three TRT tables run 7.8, 15.9 and 24.3 ms: the A100 : A30 : A10 compute ratio).
# (locator pattern, first line, last line, spec, framework, note)
SECTIONS: tuple[tuple[str, int, int, str, str, str], ...] = (
    (r"PaddlePaddle/Classification/RN50v1.5/README.md", 955, 999, "a100-sxm4-80gb",
     "Paddle-TRT (PaddlePaddle NGC)", "README table 'Paddle-TRT performance: NVIDIA DGX A100 "
     "(1x A100 80GB)' (inference.py with TensorRT), not native Paddle"),
    (r"PaddlePaddle/Classification/RN50v1.5/README.md", 1000, 1049, "a30",
     "Paddle-TRT (PaddlePaddle NGC)", "README table 'Paddle-TRT performance: NVIDIA A30 "
     "(1x A30 24GB)': the collected gpu label is the A100 heading above it; priced as a30"),
    (r"PaddlePaddle/Classification/RN50v1.5/README.md", 1050, 10**6, "a10",
     "Paddle-TRT (PaddlePaddle NGC)", "README table 'Paddle-TRT performance: NVIDIA A10 "
     "(1x A10 24GB)': the collected gpu label is the A100 heading above it; priced as a10"),
    # MXNet RN50v1.5 README: the last table (lines 748-757 at 729963dd47) is headed
    # "Inference performance: NVIDIA T4"; the collected rows carry the DGX-1 V100 heading
    # above it. They bear the T4 out: 1,559 img/s at batch 256 against 3,057 in the V100
    # table above.
    (r"MxNet/Classification/RN50v1.5/README.md", 740, 10**6, "t4", "MXNet NGC",
     "README table 'Inference performance: NVIDIA T4' (mxnet-20.12-py3): the collected gpu "
     "label is the DGX-1 V100 heading above it; priced as t4"),
)

MODELS = ((r"ResNet-50", "resnet50"), (r"BERT.*[Bb]ase", "bert-base"),
          (r"BERT.*[Ll]arge", "bert-large"), (r"Llama-2-7b", "llama-2-7b"),
          (r"Llama-2-70b", "llama-2-70b"), (r"Llama-3-8B", "llama-3-8b"),
          (r"Llama-3-70B", "llama-3-70b"), (r"Mistral-7B", "mistral-7b"),
          (r"Mixtral-8x7B", "mixtral-8x7b"))
PRECISIONS = {"fp16": "fp16", "mixed (fp16 AMP)": "fp16", "tf32": "tf32", "fp32": "fp32",
              "int8": "int8", "bf16": "bf16"}


def reference_dir() -> Path:
    """Where the converted reference CSVs live (package data, or the checkout's folder)."""
    return data_dir("measurements") / "reference"


def spec_for_device(text: str) -> tuple[str, str]:
    """(spec name, note) for a device as a published row names it; ('', '') if unknown."""
    for pattern, spec, note in DEVICE_SPECS:
        if re.search(pattern, text):
            return spec, note
    return "", ""


def _note(row_note: object, *extra: str) -> str:
    added = "; ".join(e for e in extra if e)
    base = "" if pd.isna(row_note) else str(row_note)
    return f"{base} | CONVERTED: {added}" if added else base


def _gemm_dtype(raw: str, tflops: float, spec: str) -> tuple[str, str]:
    dt = raw.split(" ")[0]
    if dt == "fp32" and spec.startswith("a100") and tflops > 19.5:
        return "tf32", ("achieved rate exceeds the 19.5 TFLOP/s fp32 peak: TF32 tensor cores "
                        "(torch's default before 1.12), priced as tf32")
    return dt, ""


def convert_gemm(src: pd.DataFrame) -> pd.DataFrame:
    """gemm.csv -> Measurement rows (family gemm). time from time_us, else 2MNK / rate."""
    rows = []
    for r in src.itertuples(index=False):
        spec, spec_note = spec_for_device(r.gpu)
        dtype, dt_note = _gemm_dtype(str(r.dtype), float(r.achieved_tflops), spec)
        flops = 2.0 * r.M * r.N * r.K
        timed = not pd.isna(r.time_us)
        time_s = r.time_us * 1e-6 if timed else flops / (r.achieved_tflops * 1e12)
        rows.append({
            "benchmark": "gemm_reference", "family": "gemm", "backend": "reference",
            "device": r.gpu, "hw": spec, "dtype": dtype, "m": r.M, "n": r.N, "k": r.K,
            "framework": r.software, "num_devices": 1, "flops": flops, "time_s": time_s,
            "achieved_TFLOPS": r.achieved_tflops, "method": r.method,
            "source": r.source, "locator": r.locator, "confidence": r.confidence,
            "row_id": r.row_id, "quote_or_note": _note(
                r.quote_or_note, spec_note, dt_note,
                "" if timed else "time_s DERIVED = 2*M*N*K / achieved_tflops"),
        })
    return measurement_frame(rows)


def _stream_bytes(test: str) -> tuple[float, str]:
    """Bytes one kernel of a STREAM-style row moves, and how that was worked out."""
    t = test.lower()
    m = re.match(r"gpu-stream (\w+) kernel", t)
    if m and m.group(1) in GPU_STREAM_STREAMS:
        s = GPU_STREAM_STREAMS[m.group(1)]
        return s * GPU_STREAM_ARRAY_BYTES, (
            f"bytes = {s} arrays x (128Mi+2) doubles: gpu-stream/main.cu max_buffer_size")
    m = re.match(r"(\w+) kernel \(azure", t)
    if m and m.group(1) in BABELSTREAM_ARRAYS:
        a = BABELSTREAM_ARRAYS[m.group(1)]
        return a * BABELSTREAM_ARRAY_BYTES, (
            f"array size not stated: BabelStream default 2^25 doubles assumed, {a} arrays")
    if "cudamemcpy d2d 16 gib" in t:
        return 2 * 16 * 2**30, "bytes = 2 x 16 GiB per copy (read + write), as bandwidth.cu"
    return np.nan, ""


def _working_set(text: str) -> float:
    m = re.match(r"\s*([\d.]+)\s*kB", str(text))
    return float(m.group(1)) * GPU_BENCHES_KB if m else np.nan


def _l2_bytes(test: str) -> float:
    """Bytes one gpu-l2-cache kernel reads: per-block data x blockCount."""
    m = re.search(r"per-block data ([\d.]+) kB", test)
    return float(m.group(1)) * GPU_BENCHES_KB * GPU_L2_BLOCKS if m else np.nan


def convert_membw(src: pd.DataFrame) -> pd.DataFrame:
    """membw.csv -> Measurement rows: STREAM / copy rows (family membw, L2 flushed or DRAM
    sized), gpu-l2-cache rows (family l2, warm), pointer chase (family latency, cycles)."""
    rows = []
    for r in src.itertuples(index=False):
        spec, spec_note = spec_for_device(r.device)
        base = {"backend": "reference", "device": r.device, "hw": spec, "num_devices": 1,
                "framework": r.software, "method": r.test, "source": r.source,
                "locator": r.locator, "confidence": r.confidence, "row_id": r.row_id}
        metric = str(r.metric).lower()
        if "latency" in metric:
            ws = _working_set(r.working_set)
            rows.append({**base, "benchmark": "pointer_chase", "family": "latency",
                         "working_set_bytes": ws, "cycles": r.value,
                         "time_s": r.value / 1.41e9 if spec.startswith("a100") else
                         r.value / 1.53e9,
                         "quote_or_note": _note(r.quote_or_note, spec_note,
                                                "time_s DERIVED = cycles / boost clock "
                                                "(1410 MHz A100, 1530 MHz V100)")})
            continue
        if "gpu-l2-cache" in str(r.test):
            ws = _working_set(r.working_set)
            nbytes, how = _l2_bytes(str(r.test)), "bytes = per-block data x 100,000 blocks"
            if np.isnan(nbytes):  # per-block data not stated: 512 kB, as in every A100 row
                nbytes, how = 512 * GPU_BENCHES_KB * GPU_L2_BLOCKS, (
                    "per-block data not stated: 512 kB (the a100_80.txt sweep's) x 100,000 "
                    "blocks")
            rows.append({**base, "benchmark": "l2_read", "family": "l2", "dtype": "fp64",
                         "bytes": nbytes, "working_set_bytes": ws,
                         "time_s": nbytes / (r.value * 1e9), "achieved_GBps": r.value,
                         "quote_or_note": _note(
                             r.quote_or_note, spec_note,
                             f"{how} (gpu-l2-cache/main.cu); working set = the data set "
                             "(kB = 1024 bytes); time_s DERIVED = bytes / GB/s")})
            continue
        nbytes, how = _stream_bytes(str(r.test))
        if np.isnan(nbytes):
            continue
        kernel = str(r.test).split(" ")[1 if str(r.test).startswith("gpu-stream") else 0]
        rows.append({**base, "benchmark": f"stream_{kernel.lower()}", "family": "membw",
                     "dtype": "fp64", "bytes": nbytes, "working_set_bytes": nbytes,
                     "time_s": nbytes / (r.value * 1e9), "achieved_GBps": r.value,
                     "quote_or_note": _note(r.quote_or_note, spec_note, how,
                                            "time_s DERIVED = bytes / GB/s")})
    return measurement_frame(rows)


def _model(text: str) -> str:
    return next((name for pat, name in MODELS if re.search(pat, text)), "")


def _section(locator: str, framework: str) -> tuple[str, tuple[str, str] | None]:
    """(framework, (spec, note)) for rows of a mislabelled published table (SECTIONS)."""
    line = re.search(r"line (\d+)", locator)
    for pattern, first, last, spec, fw, note in SECTIONS:
        if line and re.search(pattern, locator) and first <= int(line.group(1)) <= last:
            tail = framework[framework.find("["):] if "[" in framework else ""
            return f"{fw} {tail}".strip(), (spec, note)
    return framework, None


def convert_inference(src: pd.DataFrame) -> pd.DataFrame:
    """inference.csv -> Measurement rows (family inference): rows with an average latency,
    a zoo model and one stated precision. LLM rows are prefill + generation (phase generate)."""
    rows = []
    keep = src["latency_avg_ms"].notna() & ~src["metric"].str.startswith("TTFT")
    for r in src[keep].itertuples(index=False):
        model = _model(str(r.model))
        prec = PRECISIONS.get(str(r.precision), "fp16" if "not in" in str(r.precision) else "")
        if not model or not prec:
            continue
        spec, spec_note = spec_for_device(str(r.gpu))
        framework, section_note = _section(str(r.locator), str(r.framework))
        if section_note:
            spec, spec_note = section_note
        llm = model.startswith(("llama", "mistral", "mixtral"))
        notes = [spec_note]
        if "llama.cpp" in framework:
            notes.append("batch is llama-bench's -b (the prompt's micro-batch), not concurrent "
                         "sequences: priced as one sequence (validate.compare.GENERATE_PASSES)")
        if "not in" in str(r.precision):
            notes.append("precision not stated: fp16 assumed (the frameworks' default)")
        rows.append({
            "benchmark": "e2e_reference", "family": "inference", "backend": "reference",
            "device": r.gpu, "hw": spec, "dtype": prec, "model": model,
            "phase": "generate" if llm else "inference", "batch": r.batch_size,
            "seq": r.input_len, "out_seq": r.output_len if llm else np.nan,
            "framework": framework, "num_devices": r.num_gpus,
            "time_s": r.latency_avg_ms * 1e-3, "method": r.metric, "source": r.source,
            "locator": r.locator, "confidence": r.confidence, "row_id": r.row_id,
            "quote_or_note": _note(r.quote_or_note, *notes)})
    return measurement_frame(rows)


CONVERTERS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "gemm": convert_gemm, "membw": convert_membw, "inference": convert_inference}


def convert_reference(src_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Convert the published CSVs in ``src_dir`` (gemm, membw, inference) to our schema."""
    out = {}
    for name, convert in CONVERTERS.items():
        path = Path(src_dir) / f"{name}.csv"
        if not path.is_file():
            raise MeasurementError(f"reference file not found: {path}",
                                   "point at shared/reference/measurements")
        out[name] = check_measurements(convert(pd.read_csv(path)), str(path))
    return out


def write_reference(src_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Convert and write ``<out_dir>/{gemm,membw,inference}.csv`` (regenerates shipped data)."""
    paths = []
    for name, df in convert_reference(src_dir).items():
        p = Path(out_dir) / f"{name}.csv"
        df.to_csv(p, index=False, float_format="%.10g")
        paths.append(p)
    return paths


def load_reference(device: str = "a100", directory: Path | None = None) -> pd.DataFrame:
    """The shipped reference measurements of one device family (``a100``, ``v100``, ``a30``,
    ``a10``, ``t4``) or of every device (``all``)."""
    key = device.lower()
    if key not in REFERENCE_DEVICES:
        raise UnknownNameError(f"no reference measurements for {device!r}",
                               did_you_mean(key, REFERENCE_DEVICES))
    folder = directory or reference_dir()
    frames = []
    for name in CONVERTERS:
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise MeasurementError(f"shipped reference file missing: {path}",
                                   "reinstall perfmodel, or run from a source checkout")
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        frames.append(check_measurements(raw, str(path)))
    df = pd.concat(frames, ignore_index=True)
    return df[df["hw"].isin(REFERENCE_DEVICES[key])].reset_index(drop=True)


def measurement_rows(path: str | Path | None = None, reference: str | None = None, *,
                     families: Sequence[str] = (), hw: str | None = None) -> pd.DataFrame:
    """The measurement rows to compare or calibrate: a measurement file (``path``) or the
    shipped published set of one device family (``reference``), one of the two; only
    ``families`` if given; rows that name no device (files from ``perfmodel bench``) priced
    on ``hw``."""
    if (path is None) == (reference is None):
        raise PerfModelError("give one measurement file or --reference NAME",
                             "e.g. perfmodel validate host.csv --hw host.yaml, or "
                             "perfmodel validate --reference a100")
    df = load_reference(reference) if reference else read_measurements(str(path))
    if families:
        df = df[df["family"].isin(list(families))]
    if hw:
        load_device(hw)  # a bad device fails here, with its own message, used or not
    if (df["hw"] == "").any():
        if not hw:
            raise PerfModelError("the measurement rows name no device",
                                 "pass --hw NAME_OR_SPEC.yaml (e.g. the --spec-out of bench)")
        df = df.assign(hw=df["hw"].replace("", hw))
    if df.empty:
        raise PerfModelError("no measurement rows to work on", "check --family")
    return df.reset_index(drop=True)


if __name__ == "__main__":  # python -m perfmodel.validate.reference SRC_DIR OUT_DIR
    import sys

    for written in write_reference(sys.argv[1], sys.argv[2]):
        sys.stdout.write(f"wrote {written}\n")
