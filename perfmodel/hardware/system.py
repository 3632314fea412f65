"""SystemSpec: many devices, the links between them and the topology they form.

A system file (``hw_specs/systems/*.yaml``, format in docs/system_spec_format.md) names its
device by a ``hw_specs`` device name, describes the scale-up fabric inside a node (NVSwitch,
full mesh, PCIe switches with shared uplinks, a torus, GPU pairs) and the scale-out network
between nodes (NICs per node, their rate, leaf switches and oversubscription). Every link
bandwidth is per direction. Loading is read -> check -> convert -> freeze, with every problem
collected (key path, did-you-mean) into one SpecError, as for device specs.

The topology itself (a networkx.DiGraph, one edge per link direction) is built from a spec by
``perfmodel.hardware.topology.build_topology``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfmodel.errors import PlanError, SpecError, UnknownNameError, did_you_mean, raise_problems
from perfmodel.files import read_yaml
from perfmodel.hardware.checks import Checker, begin_checks, parse_curve
from perfmodel.hardware.efficiency import EfficiencyCurve
from perfmodel.hardware.load import hw_specs_dir, load_device

__all__ = ["SystemSpec", "Fabric", "Network", "load_system", "list_systems", "system_from_dict",
           "system_to_dict", "systems_dir", "TOPOLOGIES"]

# Scale-up topologies and the extra keys each one needs (beyond bandwidth and latency).
TOPOLOGIES: dict[str, set[str]] = {
    "switch": set(),                                   # every device has one port on a switch
    "full_mesh": set(),                                # a direct link between every pair
    "ring": set(),                                     # device i -> i+1 only (test fabric)
    "pcie_tree": {"devices_per_switch", "uplink_GBps_per_direction"},
    "pairs": {"uplink_GBps_per_direction"},            # bridged pairs, pairs meet over PCIe
    "torus": {"dims"},                                 # wraparound grid, one link per neighbour
}
TOP_KEYS = {"schema", "name", "display_name", "aliases", "sources", "device",
            "devices_per_node", "nodes", "scale_up", "scale_out", "collective", "notes"}
FABRIC_KEYS = {"name", "topology", "bandwidth_GBps_per_direction", "latency_us", "efficiency",
               "devices_per_switch", "uplink_GBps_per_direction", "uplink_efficiency", "dims",
               "nvls", "nvls_efficiency"}
NETWORK_KEYS = {"name", "nics_per_node", "nic_Gbps", "latency_us", "efficiency",
                "nodes_per_leaf", "oversubscription"}
COLLECTIVE_KEYS = {"launch_latency_us", "architecture", "library"}
# The collective library's tuning tables a system is priced with (hw_specs/_nccl_tuning.yaml:
# NCCL's compute-capability rows) and the libraries known.
NCCL_ARCHITECTURES = ("volta", "ampere", "hopper", "blackwell")
LIBRARIES = ("nccl", "rccl")


@dataclass(frozen=True)
class Fabric:
    """The scale-up fabric inside one node (or one torus slice).

    ``bandwidth_Bps`` is per direction: of each device's port for ``switch`` and
    ``pcie_tree``, of each link for ``full_mesh``, ``ring``, ``torus`` and the bridge of
    ``pairs``. ``latency_s`` is the per-step latency of one transfer over this fabric;
    ``efficiency`` the achieved / nominal bandwidth as a function of message size (bytes),
    measured on a link of ``efficiency_ref_Bps`` (None: this fabric's own bandwidth). A link
    of bandwidth b reads the curve at size x ref / b: efficiency follows the transfer time
    V / b (Hockney's half-bandwidth size scales with bandwidth). ``uplink_efficiency`` is
    the PCIe uplink's own achieved / nominal figure (a PCIe hop has no NVLink protocol
    switches); None: the uplink reads ``efficiency`` like any other link.
    """

    topology: str
    name: str
    bandwidth_Bps: float
    latency_s: float
    efficiency: EfficiencyCurve
    uplink_Bps: float | None = None
    devices_per_switch: int | None = None
    dims: tuple[int, ...] = ()
    efficiency_ref_Bps: float | None = None  # the curve was measured at this bandwidth
    uplink_efficiency: EfficiencyCurve | None = None
    nvls: bool = False                       # NVLink SHARP: the switches reduce in-network
    nvls_efficiency: EfficiencyCurve | None = None
    nvls_efficiency_ref_Bps: float | None = None


@dataclass(frozen=True)
class Network:
    """The scale-out network: NICs per node (rate per direction) into leaf switches.

    With ``nodes_per_leaf`` set, leaves connect to one spine whose per-leaf bandwidth is the
    leaf's NIC total divided by ``oversubscription``; without it the network is one
    non-blocking switch.
    """

    name: str
    nics_per_node: int
    nic_Bps: float
    latency_s: float
    efficiency: EfficiencyCurve
    nodes_per_leaf: int | None = None
    oversubscription: float = 1.0
    efficiency_ref_Bps: float | None = None  # the curve was measured at this bandwidth

    @property
    def node_Bps(self) -> float:
        """All of one node's NICs together, per direction."""
        return self.nics_per_node * self.nic_Bps


@dataclass(frozen=True)
class SystemSpec:
    """A multi-device system as read from a system file (see docs/system_spec_format.md)."""

    name: str
    display_name: str
    device: str
    devices_per_node: int
    nodes: int
    scale_up: Fabric
    scale_out: Network | None
    launch_latency_s: float
    aliases: tuple[str, ...] = ()
    architecture: str | None = None   # NCCL tuning rows (None: NCCL 2.7.5's legacy model)
    library: str = "nccl"
    provenance: Mapping[str, str] = field(default_factory=dict, compare=False)
    path: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def shape(self, nodes: int | None = None, per_node: int | None = None) -> tuple[int, int]:
        """(nodes, devices per node) for a run, checked against what the system has."""
        n = self.nodes if nodes is None else int(nodes)
        g = self.devices_per_node if per_node is None else int(per_node)
        if n < 1 or g < 1:
            raise PlanError(f"nodes and devices per node must be positive, got {n} x {g}",
                            "pass --nodes >= 1 and --gpus >= 1")
        if g > self.devices_per_node:
            raise PlanError(f"{self.name} has {self.devices_per_node} devices per node, "
                            f"asked for {g}", f"use --gpus <= {self.devices_per_node}")
        if n > 1 and self.scale_out is None:
            raise PlanError(f"{self.name} has no scale-out network: it is one node",
                            "use --nodes 1, or describe scale_out in the system file")
        if self.scale_up.topology == "torus" and g != self.devices_per_node:
            raise PlanError(f"a torus slice is used whole: {self.name} has "
                            f"{self.devices_per_node} chips", "leave --gpus out")
        return n, g

    def device_spec(self) -> Any:
        """The DeviceSpec of the system's devices (loaded from hw_specs)."""
        return load_device(self.device)


def systems_dir() -> Path:
    return hw_specs_dir() / "systems"


def _int_leaf(c: Checker, path: str, d: Any) -> int | None:
    v = c.leaf(path, d)
    if v is not None and float(v) != int(v):
        c.add(f"{path}.value", f"must be a whole number, got {v}")
        return None
    return None if v is None else int(v)


def _efficiency(c: Checker, path: str, d: Any) -> tuple[EfficiencyCurve, float | None]:
    """A constant ({value: 0.8, source}) or a curve ({value: [[bytes, eff], ...], source,
    reference_GBps}); reference_GBps names the bandwidth the curve was measured at."""
    ideal = EfficiencyCurve((1.0,), (1.0,))
    if d is None:
        c.provenance[path] = "not given: ideal (1.0)"
        return ideal, None
    ref = None
    if isinstance(d, Mapping) and "reference_GBps" in d:
        r = d["reference_GBps"]
        if isinstance(r, bool) or not isinstance(r, int | float) or r <= 0:
            c.add(f"{path}.reference_GBps", f"must be a positive number, got {r!r}")
        else:
            ref = float(r) * 1e9
        d = {k: v for k, v in d.items() if k != "reference_GBps"}
    if isinstance(d, Mapping) and isinstance(d.get("value"), int | float) \
            and not isinstance(d.get("value"), bool):
        v = c.leaf(path, d)
        if v is not None and v > 1:
            c.add(f"{path}.value", f"is a fraction of nominal bandwidth, must be <= 1, got {v}")
        return EfficiencyCurve((1.0,), (float(v or 1.0),)), ref
    return parse_curve(c, path, d) or ideal, ref


def _latency(c: Checker, path: str, d: Any) -> float:
    v = c.leaf(path, d, positive=False) if d is not None else None
    return float(v or 0.0) * 1e-6


def _dims(c: Checker, d: Any) -> tuple[int, ...]:
    """A torus shape {value: [4, 4, 4], source: ...}."""
    raw = d.get("value") if isinstance(d, Mapping) else None
    c.leaf("scale_up.dims", {**d, "value": 1} if isinstance(d, Mapping) else d)  # the source
    if not (isinstance(raw, list) and raw and all(
            isinstance(x, int) and not isinstance(x, bool) and x >= 2 for x in raw)):
        c.add("scale_up.dims.value", f"must be a list of sizes >= 2, got {raw!r}")
        return ()
    return tuple(raw)


def _fabric(c: Checker, d: Any) -> Fabric | None:
    if not c.keys("scale_up", d, FABRIC_KEYS):
        return None
    topo = d.get("topology")
    if not isinstance(topo, str) or topo not in TOPOLOGIES:
        c.add("scale_up.topology",
              f"unknown topology {topo!r} ({did_you_mean(str(topo), TOPOLOGIES)})")
        return None
    for k in ("bandwidth_GBps_per_direction", *sorted(TOPOLOGIES[topo])):
        if k not in d:
            c.add(f"scale_up.{k}", f"missing: a {topo} fabric needs it")
    bw = c.leaf("scale_up.bandwidth_GBps_per_direction", d.get("bandwidth_GBps_per_direction",
                                                              {"value": 1, "source": "-"}))
    up = c.leaf("scale_up.uplink_GBps_per_direction", d["uplink_GBps_per_direction"]) \
        if "uplink_GBps_per_direction" in d else None
    per_sw = _int_leaf(c, "scale_up.devices_per_switch", d["devices_per_switch"]) \
        if "devices_per_switch" in d else None
    dims = _dims(c, d["dims"]) if "dims" in d else ()
    eff, ref = _efficiency(c, "scale_up.efficiency", d.get("efficiency"))
    up_eff = None
    if "uplink_efficiency" in d:
        if "uplink_GBps_per_direction" not in d:
            c.add("scale_up.uplink_efficiency", "has no uplink to apply to: give "
                  "uplink_GBps_per_direction (pcie_tree, pairs) or drop the key")
        up_eff, up_ref = _efficiency(c, "scale_up.uplink_efficiency", d["uplink_efficiency"])
        if up_ref is not None:
            c.add("scale_up.uplink_efficiency.reference_GBps",
                  "is read on the uplink itself: drop reference_GBps")
    nvls = bool(c.leaf("scale_up.nvls", d["nvls"], kind=bool)) if "nvls" in d else False
    nvls_eff, nvls_ref = (None, None)
    if "nvls_efficiency" in d:
        if not nvls:
            c.add("scale_up.nvls_efficiency", "has no NVLink SHARP to apply to: give "
                  "nvls: {value: true, source: ...} or drop the key")
        nvls_eff, nvls_ref = _efficiency(c, "scale_up.nvls_efficiency", d["nvls_efficiency"])
    if nvls and topo != "switch":
        c.add("scale_up.nvls", f"NVLink SHARP reduces in the switches: a {topo} fabric has "
              "none (topology: switch)")
    return Fabric(topology=str(topo), name=str(d.get("name", topo)),
                  bandwidth_Bps=float(bw or 1.0) * 1e9,
                  latency_s=_latency(c, "scale_up.latency_us", d.get("latency_us")),
                  efficiency=eff, uplink_Bps=float(up) * 1e9 if up else None,
                  devices_per_switch=per_sw, dims=dims, efficiency_ref_Bps=ref,
                  uplink_efficiency=up_eff, nvls=nvls, nvls_efficiency=nvls_eff,
                  nvls_efficiency_ref_Bps=nvls_ref)


def _network(c: Checker, d: Any) -> Network | None:
    if not c.keys("scale_out", d, NETWORK_KEYS):
        return None
    for k in ("nics_per_node", "nic_Gbps"):
        if k not in d:
            c.add(f"scale_out.{k}", "missing: a scale-out network needs it")
    nics = _int_leaf(c, "scale_out.nics_per_node", d["nics_per_node"]) \
        if "nics_per_node" in d else None
    rate = c.leaf("scale_out.nic_Gbps", d["nic_Gbps"]) if "nic_Gbps" in d else None
    leaf = _int_leaf(c, "scale_out.nodes_per_leaf", d["nodes_per_leaf"]) \
        if "nodes_per_leaf" in d else None
    over = c.leaf("scale_out.oversubscription", d["oversubscription"]) \
        if "oversubscription" in d else None
    if over is not None and over < 1:
        c.add("scale_out.oversubscription.value", f"must be >= 1 (1 = non-blocking), got {over}")
    eff, ref = _efficiency(c, "scale_out.efficiency", d.get("efficiency"))
    return Network(name=str(d.get("name", "network")), nics_per_node=nics or 1,
                   nic_Bps=float(rate or 1.0) * 1e9 / 8,
                   latency_s=_latency(c, "scale_out.latency_us", d.get("latency_us")),
                   efficiency=eff, nodes_per_leaf=leaf, oversubscription=float(over or 1.0),
                   efficiency_ref_Bps=ref)


def _device_name(c: Checker, d: Mapping[str, Any]) -> str:
    name = d.get("device")
    if not isinstance(name, str):
        c.add("device", "missing: name a hw_specs device (perfmodel hw)")
        return ""
    try:
        return load_device(name).name
    except UnknownNameError as exc:
        c.add("device", f"unknown device {name!r} ({exc.hint})")
    except SpecError as exc:
        c.add("device", f"device spec {name!r} does not load: {exc.message}")
    return name


def _check_shape(c: Checker, fabric: Fabric | None, per_node: int | None) -> None:
    if fabric is None or per_node is None:
        return
    if fabric.topology == "torus" and fabric.dims:
        prod = 1
        for x in fabric.dims:
            prod *= x
        if prod != per_node:
            c.add("devices_per_node", f"a torus {fabric.dims} holds {prod} chips, not {per_node}")
    if fabric.topology == "pcie_tree" and fabric.devices_per_switch \
            and per_node % fabric.devices_per_switch:
        c.add("scale_up.devices_per_switch", "must divide devices_per_node")
    if fabric.topology == "pairs" and per_node % 2:
        c.add("devices_per_node", "a pairs fabric needs an even number of devices")


def system_from_dict(d: Any, path: str = "<dict>") -> SystemSpec:
    """Check and convert a system mapping (as read from YAML) into a SystemSpec."""
    c = begin_checks(d, path, "system", "docs/system_spec_format.md", TOP_KEYS,
                     ("name", "device", "devices_per_node", "scale_up"))
    device = _device_name(c, d)
    per_node = _int_leaf(c, "devices_per_node", d["devices_per_node"]) \
        if "devices_per_node" in d else None
    nodes = _int_leaf(c, "nodes", d["nodes"]) if "nodes" in d else 1
    fabric = _fabric(c, d["scale_up"]) if "scale_up" in d else None
    _check_shape(c, fabric, per_node)
    network = _network(c, d["scale_out"]) if d.get("scale_out") is not None else None
    coll = d.get("collective") or {}
    launch, arch, lib = 0.0, None, "nccl"
    if c.keys("collective", coll, COLLECTIVE_KEYS):
        launch = _latency(c, "collective.launch_latency_us", coll.get("launch_latency_us"))
        if "architecture" in coll:
            arch = c.choice("collective.architecture", coll["architecture"],
                           NCCL_ARCHITECTURES)
        if "library" in coll:
            lib = c.choice("collective.library", coll["library"], LIBRARIES) or "nccl"
    aliases = d.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        c.add("aliases", "must be a list of names")
        aliases = []
    raise_problems(path, c.problems, "fix these keys (format: docs/system_spec_format.md)")
    if fabric is None or per_node is None:  # unreachable: both are problems above
        raise SpecError(f"{path}: scale_up and devices_per_node are required",
                        "see docs/system_spec_format.md")
    return SystemSpec(
        name=str(d["name"]), display_name=str(d.get("display_name", d["name"])),
        device=device, devices_per_node=per_node, nodes=int(nodes or 1), scale_up=fabric,
        scale_out=network, launch_latency_s=launch, architecture=arch, library=lib,
        aliases=tuple(a.lower() for a in aliases), provenance=c.provenance, path=path,
        raw=dict(d))


def system_to_dict(spec: SystemSpec) -> dict[str, Any]:
    """The spec as a mapping in file format (round-trips through system_from_dict)."""
    return dict(spec.raw)


@functools.lru_cache(maxsize=4)
def _index(directory: str) -> dict[str, Path]:
    """name or alias (lower-case) -> file, for every shipped system spec."""
    idx: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        d = read_yaml(path)
        if isinstance(d, Mapping):
            for key in [d.get("name", path.stem), *(d.get("aliases") or [])]:
                idx[str(key).lower()] = path
    return idx


def list_systems(directory: Path | None = None) -> list[str]:
    """Canonical names of the shipped systems."""
    return sorted({p.stem for p in _index(str(directory or systems_dir())).values()})


def load_system(name_or_path: str | Path, directory: Path | None = None) -> SystemSpec:
    """A shipped system by name or alias (``"dgx-a100"``), or a user's file by path.

    >>> s = load_system("dgx-a100")
    >>> s.devices_per_node, s.scale_up.topology, s.scale_up.bandwidth_Bps / 1e9
    (8, 'switch', 300.0)
    """
    key = str(name_or_path)
    path = Path(key)
    if not (key.endswith((".yaml", ".yml")) or path.is_file()):
        idx = _index(str(directory or systems_dir()))
        if key.lower() not in idx:
            raise UnknownNameError(f"unknown system {key!r}",
                                   did_you_mean(key, idx) + " (or give a system YAML path)")
        path = idx[key.lower()]
    return system_from_dict(read_yaml(path), str(path))
