"""Collectives: accuracy against published A100 nccl-tests rows, and perfmodel's own speed.

    python benchmarks/bench_collectives.py               # accuracy table + speed
    python benchmarks/bench_collectives.py --calibrate   # re-fit the figures the system
                                                         # files cite as FIT-* and print them
    python benchmarks/bench_collectives.py --skip-des    # accuracy and analytic sweep only

Accuracy: every row of measurements/reference/collectives.csv (a verbatim copy of the
published collective measurements, with their citations) is mapped to a shipped
system (hw_specs/systems) and predicted with the alpha-beta model (algorithm "auto", as NCCL
picks). Rows are split into the calibration set (the rows the FIT-* figures of dgx-a100.yaml
and polaris.yaml were fitted on; nothing else is fitted) and held-out rows; rows whose system
the source does not describe are excluded with the reason. Errors are |pred - meas| / meas of
time and of busbw, per system and size range.

Speed targets (the collectives issue): a DES ring all-reduce over 1,024 devices, chunked and
simulated event by event, in < 5 s (wall time and events/s printed); an analytic sweep of
10^5 (size, p, algorithm) points in < 1 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from perfmodel.analytic.collectives import BUS_FACTOR, CLOSED_FORMS, collective_time
from perfmodel.analytic.network import levels, predict_collective
from perfmodel.hardware.system import load_system, system_from_dict
from perfmodel.validate.collectives import SIZE_RANGES, cross_validate, median_knots

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get(
    "PERFMODEL_COLLECTIVES_CSV",
    ROOT / "measurements" / "reference" / "collectives.csv"))  # shipped: a clone has it
KIB, MIB = 1024, 1024 * 1024

# Calibration sets (the FIT-* sources in hw_specs/systems/dgx-a100.yaml and polaris.yaml).
AZURE = "Azure/AI-benchmarking-guide"
VIDUR_DGX = "vidur/data/profiling/network/a100_dgx"
VIDUR_PAIRS = "a100_pairwise_nvlink"
FLAGPERF_INTRA = "interconnect-MPI_intraserver"
FLAGPERF_INTER = "interconnect-MPI_interserver"
LLMCOMPASS = "LLMCompass"
POLARIS = "alcf-nccl-tests"


# ---------------------------------------------------------------- rows -> systems


def load_rows(path: Path = REFERENCE) -> pd.DataFrame:
    """The published rows, one measured time (us) and busbw (GB/s) each, mapped to systems."""
    d = pd.read_csv(path)
    d = d.assign(system="", nodes=d["num_nodes"].astype(int), per_node=d["gpus_per_node"],
                 role="held-out", reason="")
    src = d["source"]
    d.loc[src.str.contains(AZURE), ["system", "per_node", "role"]] = ["dgx-a100", 8,
                                                                     "calibration"]
    d.loc[src.str.contains(AZURE), "reason"] = "8 GPUs per VM (Azure ND A100 v4 spec)"
    one_node = src.str.contains(VIDUR_DGX) & (d["nodes"] == 1)
    d.loc[one_node | src.str.contains(FLAGPERF_INTRA) | src.str.contains(LLMCOMPASS),
          "system"] = "dgx-a100"
    d.loc[src.str.contains(VIDUR_PAIRS), "system"] = "azure-nc-a100-v4"
    d.loc[src.str.contains(POLARIS), "system"] = "polaris"
    excluded = (src.str.contains(VIDUR_DGX) & (d["nodes"] > 1)) | src.str.contains(
        FLAGPERF_INTER)
    d.loc[excluded, ["role", "reason"]] = [
        "excluded", "scale-out network not stated by the source (vidur multi-node: "
        "'not stated'; FlagPerf interserver: 48 GB/s busbw, a quarter of the DGX reference)"]
    d["per_node"] = d["per_node"].fillna(d["num_gpus"] / d["nodes"]).astype(int)
    d["p"] = d["nodes"] * d["per_node"]
    d["size"] = d["size_bytes"].astype(float)
    factor = np.array([BUS_FACTOR[c](np.float64(p)) for c, p in zip(d["collective"], d["p"],
                                                                     strict=True)])
    t = d["time_us_oop"].fillna(d["time_us_ip"])
    # busbw-only rows: time = size x factor / busbw (or size / algbw)
    t = t.fillna(d["size"] / (d["algbw_GBps_oop"] * 1e3))
    t = t.fillna(d["size"] * factor / (d["busbw_GBps_ip"].fillna(d["busbw_GBps_oop"]) * 1e3))
    d["t_meas_us"] = t
    d["busbw_meas"] = d["size"] * factor / (t * 1e3)
    polaris_cal = src.str.contains(POLARIS) & (d["collective"] == "all_reduce") & d["p"].isin(
        [8, 32])
    d.loc[polaris_cal, "role"] = "calibration"
    return d


def predict_rows(d: pd.DataFrame) -> pd.DataFrame:
    """Analytic prediction (algorithm auto) for every mapped row."""
    d = d.copy()
    d["t_pred_us"] = np.nan
    d["algorithm"] = ""
    mapped = d[d["role"] != "excluded"]
    for (system, prim, n, g), grp in mapped.groupby(["system", "collective", "nodes",
                                                     "per_node"]):
        pred = predict_collective(load_system(system), prim, grp["size"].to_numpy(), n, g)
        d.loc[grp.index, "t_pred_us"] = pred.table["time_us"].to_numpy()
        d.loc[grp.index, "algorithm"] = pred.table["algorithm"].to_numpy()
    d["busbw_pred"] = d["busbw_meas"] * d["t_meas_us"] / d["t_pred_us"]
    d["time_err"] = (d["t_pred_us"] - d["t_meas_us"]).abs() / d["t_meas_us"]
    d["busbw_err"] = (d["busbw_pred"] - d["busbw_meas"]).abs() / d["busbw_meas"]
    d["range"] = pd.cut(d["size"], [r[0] for r in SIZE_RANGES] + [np.inf], right=False,
                        labels=[r[2] for r in SIZE_RANGES])
    return d


def error_table(d: pd.DataFrame) -> pd.DataFrame:
    """Median / mean abs error of time and busbw per (role, system, size range)."""
    ok = d[d["role"] != "excluded"]
    g = ok.groupby(["role", "system", "range"], observed=True)
    out = g.agg(rows=("time_err", "size"), med_time=("time_err", "median"),
                mean_time=("time_err", "mean"), med_busbw=("busbw_err", "median"),
                mean_busbw=("busbw_err", "mean"))
    big = ok[ok["size"] >= MIB].groupby(["role", "system"]).agg(
        rows=("time_err", "size"), med_time=("time_err", "median"),
        mean_time=("time_err", "mean"), med_busbw=("busbw_err", "median"),
        mean_busbw=("busbw_err", "mean"))
    big.index = pd.MultiIndex.from_tuples([(r, s, ">= 1 MiB (goal < 5 %)")
                                           for r, s in big.index])
    return pd.concat([out, big]).sort_index()


def by_run(d: pd.DataFrame) -> pd.DataFrame:
    """>= 1 MiB error per published run (system, collective, p): where the model misses."""
    ok = d[(d["role"] != "excluded") & (d["size"] >= MIB)]
    return ok.groupby(["role", "system", "collective", "p"]).agg(
        rows=("time_err", "size"), med_time=("time_err", "median"),
        med_busbw=("busbw_err", "median"))


# ---------------------------------------------------------------- calibration


def _ring_latency_s(system_name: str, prim: str, sizes: np.ndarray, n: int, g: int
                    ) -> np.ndarray:
    """The model's latency part (launch + steps x alpha) of the ring algorithm."""
    s = load_system(system_name)
    intra, inter = levels(s, n, g)
    p = np.full_like(sizes, n * g)
    steps, _ = CLOSED_FORMS[("ring", prim)](sizes, p)
    lat = steps * intra.alpha_s
    if inter is not None:
        inter_steps, _ = CLOSED_FORMS[("ring", prim)](sizes, np.full_like(sizes, n))
        lat = (steps - inter_steps) * intra.alpha_s + inter_steps * inter.alpha_s
    return s.launch_latency_s + lat


NCCL_LL_NVLINK_S = 0.47e-6  # NCCL hwLat Ring/LL, NVLink (tuning.cc): per-step latency prior


def calibrate(d: pd.DataFrame) -> dict[str, dict[str, object]]:
    """Re-fit the FIT-* figures (see the system files' sources for the rows used).

    dgx-a100: per-step latency = NCCL's NVLink LL figure; launch latency = median over the
    Azure rows <= 64 KiB of t - 2(p-1) alpha; efficiency = ring traffic / (300 GB/s x (t -
    latency)) of every Azure row >= 256 KiB, read at the per-step message V / 8, medians at
    4x size steps.
    polaris: intra latency as dgx-a100; small all-reduce runs as NCCL's tree, t = launch +
    2((g-1) a_i + log2(n) a_o), so the medians of the rows <= 64 KiB at 8 and 32 GPUs give
    a_o and launch; network efficiency as above over the 8- and 32-GPU rows >= 64 KiB, at the
    per-step message size V / p (how the network curve is read, analytic.network.Level).
    """
    a_i = NCCL_LL_NVLINK_S
    out: dict[str, dict[str, object]] = {}
    az = d[d["source"].str.contains(AZURE)]
    small = az[az["size"] <= 64 * KIB]
    launch = float(np.median(small["t_meas_us"] * 1e-6 - 2 * 7 * a_i))
    big = az[az["size"] >= 256 * KIB]
    v, t = big["size"].to_numpy(), big["t_meas_us"].to_numpy() * 1e-6
    eff = 2 * 7 / 8 * v / (300e9 * np.maximum(t - launch - 2 * 7 * a_i, 1e-9))
    out["dgx-a100"] = {"collective.launch_latency_us": round(launch * 1e6, 2),
                       "scale_up.efficiency": median_knots(v / 8, eff, lo=32 * KIB)}
    pol = d[(d["system"] == "polaris") & (d["role"] == "calibration")]
    small = pol[pol["size"] <= 64 * KIB]
    t8 = float(small[small["p"] == 8]["t_meas_us"].median()) * 1e-6
    t32 = float(small[small["p"] == 32]["t_meas_us"].median()) * 1e-6
    a_o = (t32 - t8) / (2 * (3 - 1))                   # log2(8) - log2(2) = 2
    launch = t8 - 2 * (3 * a_i + 1 * a_o)
    sizes, effs = [], []
    for (n, g), grp in pol[pol["size"] >= 64 * KIB].groupby(["nodes", "per_node"]):
        v = grp["size"].to_numpy()
        p = n * g
        lat = launch + (2 * (p - 1) - 2 * (n - 1)) * a_i + 2 * (n - 1) * a_o
        tt = grp["t_meas_us"].to_numpy() * 1e-6
        sizes.append(v / p)  # the network curve is read at the per-step message V / p
        effs.append(2 * (p - 1) / p * v / (50e9 * np.maximum(tt - lat, 1e-9)))
    v, e = np.concatenate(sizes), np.concatenate(effs)
    out["polaris"] = {"scale_out.latency_us": round(a_o * 1e6, 3),
                      "collective.launch_latency_us": round(launch * 1e6, 2),
                      "scale_out.efficiency": median_knots(v, e, lo=4 * KIB)}
    return out


def fits_match(d: pd.DataFrame) -> bool:
    """Do the shipped FIT-* figures equal what calibrate() derives now?"""
    fit = calibrate(d)
    a, p = load_system("dgx-a100"), load_system("polaris")
    pairs = [(a.launch_latency_s * 1e6, fit["dgx-a100"]["collective.launch_latency_us"]),
             (p.launch_latency_s * 1e6, fit["polaris"]["collective.launch_latency_us"]),
             (p.scale_out.latency_s * 1e6 if p.scale_out else 0.0,
              fit["polaris"]["scale_out.latency_us"])]
    curves = [(a.scale_up.efficiency.to_points(), fit["dgx-a100"]["scale_up.efficiency"]),
              (p.scale_out.efficiency.to_points() if p.scale_out else [],
               fit["polaris"]["scale_out.efficiency"])]
    return all(abs(float(x) - float(y)) < 1e-6 for x, y in pairs) and all(
        np.allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in curves)


# ---------------------------------------------------------------- speed


def uniform_ring(p: int, gbps: float = 100.0, alpha_us: float = 2.0):  # type: ignore[no-untyped-def]
    """A p-device ring of direct links (the fabric where the closed form holds exactly)."""
    return system_from_dict({
        "name": f"ring-{p}", "device": "a100", "sources": {"S": "synthetic benchmark fabric"},
        "devices_per_node": {"value": p, "source": "S"},
        "scale_up": {"topology": "ring", "bandwidth_GBps_per_direction": {"value": gbps,
                                                                          "source": "S"},
                     "latency_us": {"value": alpha_us, "source": "S"}}})


def bench_des(p: int = 1024, size: float = 256 * MIB, record: bool = False,
              uneven: bool = False) -> dict[str, float]:
    """One ring all-reduce on p devices, 2(p-1) steps of one piece per device per step,
    each transfer a link hold and an arrival that wakes its receiver. Arrivals due at the
    same instant share one simpy queue event (``events``), so the uniform ring needs about
    one per step; ``uneven`` slows link i by 1 + i/(10 p), so that no two arrivals coincide
    and every transfer costs a queue event of its own (the worst case)."""
    from perfmodel.sim.collectives import simulate_collective

    system = uniform_ring(p)
    slow = {(f"n0.d{i}", f"n0.d{(i + 1) % p}"): 1.0 + i / (10 * p) for i in range(p)}
    t0 = time.perf_counter()
    r = simulate_collective(system, "all_reduce", size, record=record,
                            link_slowdown=slow if uneven else None)
    wall = time.perf_counter() - t0
    analytic = float(collective_time("all_reduce", size, p, 2e-6, 100e9))
    return {"p": p, "transfers": r.transfers, "events": r.events, "wall_s": wall,
            "sim_run_s": r.wall_s, "events_per_s": r.events / r.wall_s,
            "transfers_per_s": r.transfers / r.wall_s,
            "sim_time_s": r.time_s, "analytic_s": analytic,
            "rel_diff": abs(r.time_s - analytic) / analytic}


def bench_sweep(points: int = 100_000) -> dict[str, float]:
    algos = ["ring", "tree", "recursive", "parameter_server"]
    per = points // len(algos)
    sizes = np.logspace(0, 10, 100)
    ps = np.arange(2, 2 + per // len(sizes))
    v, p = np.meshgrid(sizes, ps)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        out = [collective_time("all_reduce", v, p, 5e-6, 100e9, a) for a in algos]
        best = min(best, time.perf_counter() - t0)
    return {"points": sum(o.size for o in out), "wall_s": best}


# ---------------------------------------------------------------- main


# Published 8-GPU all_reduce busbw (GB/s, NVLS, in-place): Azure/AI-benchmarking-guide
# @ 8fd0c6e1 Azure_Results/ND_H100_v5_results.md (fitted: FIT-H100-NVLS) and
# ND_H200_v5_results.md (held out); listed in measurements/published/README.md.
PUBLISHED_NVLS = {
    "dgx-h100": {1: 43.70, 4: 128.73, 16: 234.45, 64: 361.78, 256: 423.38, 1024: 466.35,
                 8192: 478.87},
    "hgx-h200": {1: 52.96, 4: 138.44, 16: 240.41, 64: 368.11, 256: 432.24, 1024: 467.58,
                 8192: 479.98},
}


def nvls_table() -> pd.DataFrame:
    """Predicted (auto) 8-GPU all-reduce busbw beside the published NVLS curves."""
    rows = []
    for system, pub in PUBLISHED_NVLS.items():
        mib = np.array(sorted(pub), dtype=float)
        t = predict_collective(load_system(system), "all_reduce", mib * MIB).table
        for m, (_, r) in zip(mib, t.iterrows(), strict=True):
            rows.append({"system": system, "size_MiB": int(m), "algorithm": r["algorithm"],
                         "pred_busbw": r["busbw_GBps"], "published": pub[int(m)],
                         "err": r["busbw_GBps"] / pub[int(m)] - 1})
    return pd.DataFrame(rows)


def _pct(x: float) -> str:
    return "-" if pd.isna(x) else f"{100 * x:.1f}%"


def self_calibrated(d: pd.DataFrame) -> pd.DataFrame:
    """What a user gets by fitting the shipped system to their own run (perfmodel collective
    check --calibrate-out): per published run, fitted on every other size, >= 1 MiB median
    |time error| on the sizes the fit did not see (perfmodel.validate.collectives)."""
    out = []
    ok = d[d["role"] != "excluded"]
    for (system, prim, n, g, src), grp in ok.groupby(["system", "collective", "nodes",
                                                       "per_node", "source"]):
        if len(grp) < 6:
            continue
        frame = pd.DataFrame({"source": src, "collective": prim, "nodes": n, "per_node": g,
                              "size_bytes": grp["size"], "t_meas_us": grp["t_meas_us"]})
        held = cross_validate(load_system(system), frame)
        big = held[held["size_bytes"] >= MIB]
        out.append({"system": system, "collective": prim, "p": n * g, "rows": len(big),
                    "shipped": grp.loc[grp["size"] >= MIB, "time_err"].median(),
                    "self_calibrated": big["time_err"].abs().median()})
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true", help="print re-fitted FIT-* figures")
    ap.add_argument("--skip-des", action="store_true", help="skip the 1,024-device DES")
    ap.add_argument("--reference", type=Path, default=REFERENCE)
    args = ap.parse_args(argv)
    print(f"machine: {platform.machine()} {platform.processor() or ''} "
          f"({os.cpu_count()} cpus), python {platform.python_version()}")
    if not args.reference.is_file():
        print(f"reference rows not found at {args.reference} (set PERFMODEL_COLLECTIVES_CSV)")
        return 2
    rows = load_rows(args.reference)
    if args.calibrate:
        import yaml
        print(yaml.safe_dump(calibrate(rows), default_flow_style=None, sort_keys=False))
        return 0
    print(f"FIT figures in hw_specs/systems match a re-fit of the calibration rows: "
          f"{'yes' if fits_match(rows) else 'NO - run --calibrate and update the files'}")
    d = predict_rows(rows)
    counts = d["role"].value_counts()
    print(f"\nAccuracy vs {args.reference.name}: {len(d)} rows = "
          + ", ".join(f"{counts.get(r, 0)} {r}" for r in ("calibration", "held-out",
                                                           "excluded")))
    table = error_table(d)
    fmt = {c: _pct for c in ("med_time", "mean_time", "med_busbw", "mean_busbw")}
    print(table.to_string(formatters=fmt))
    print("\n>= 1 MiB, per published run (median abs error):")
    print(by_run(d).to_string(formatters={"med_time": _pct, "med_busbw": _pct}))
    print("\n>= 1 MiB median |time error| per run: shipped system vs the system fitted to the "
          "run itself\n(--calibrate-out; fitted on every other size, scored on the others):")
    print(self_calibrated(d).to_string(index=False, formatters={
        "shipped": _pct, "self_calibrated": _pct}))
    sweep = bench_sweep()
    print("\n8-GPU NVSwitch all_reduce busbw vs published (Azure ND H100 v5 fitted, ND H200 v5 "
          "held out; GB/s):")
    print(nvls_table().to_string(index=False, formatters={
        "pred_busbw": "{:.1f}".format, "err": _pct}))
    print(f"\nanalytic sweep: {sweep['points']:,} (size, p, algorithm) points in "
          f"{sweep['wall_s'] * 1e3:.1f} ms (target < 1 s)")
    if not args.skip_des:
        for record, uneven in ((False, False), (True, False), (False, True)):
            r = bench_des(record=record, uneven=uneven)
            print(f"DES ring all-reduce, {r['p']} devices, 1 chunk per step "
                  f"({r['transfers']:,} transfers), timeline {'on' if record else 'off'}"
                  f"{', uneven links (worst case)' if uneven else ''}: "
                  f"{r['wall_s']:.2f} s wall ({r['sim_run_s']:.2f} s in env.run), "
                  f"{r['transfers']:,} transfers on {r['events']:,} simpy queue events "
                  f"(same-instant arrivals share one), {r['transfers_per_s']:,.0f} transfers/s "
                  f"(target < 5 s); simulated {r['sim_time_s'] * 1e3:.3f} ms vs closed form "
                  f"{r['analytic_s'] * 1e3:.3f} ms ({100 * r['rel_diff']:.3f} % apart)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
