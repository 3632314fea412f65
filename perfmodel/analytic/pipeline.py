"""Pipeline-parallel closed forms: bubbles, in-flight activations, layer assignment.

With p stages, m micro-batches, uniform forward time t_f and backward time t_b per stage
and micro-batch (Narayanan et al., "Efficient large-scale language model training on GPU
clusters using Megatron-LM", SC 2021, sec. 2.2):

* GPipe and 1F1B (PipeDream-flush): the pipeline fills and drains once, so the step takes
  (m + p - 1)(t_f + t_b); the bubble is (p - 1)(t_f + t_b), i.e. (p - 1)/m of the ideal
  m(t_f + t_b), or (p - 1)/(m + p - 1) of the step (Huang et al., GPipe, 2019).
* Interleaved 1F1B with v model chunks per device: the bubble shrinks to (p - 1)/(v m)
  of the ideal, at v times the point-to-point traffic.
* Activations in flight on the first stage: m micro-batches for GPipe, at most p for 1F1B
  (min(p, m)); interleaving multiplies the 1F1B figure by 1 + (p - 1)/(p v) (Korthikanti
  et al., "Reducing activation recomputation in large transformer models", 2023,
  sec. 4.2.3).

Modern schedules split the backward into B (gradient of the input) and W (gradient of the
weights, which nothing downstream waits for). Here t_f, t_b, t_w are per stage and
micro-batch for the whole stage, and t_b is the input-gradient part only (with t_w = 0 the
backward includes the weight gradient, as in the classic schedules):

* ZB-H1 (Qi, Wan, Huang, Lin, "Zero Bubble Pipeline Parallelism", ICLR 2024,
  arXiv 2401.10241, sec. 2, the table of handcrafted schedules): 1F1B's memory, bubble
  (p-1)(t_f + t_b - t_w); 1F1B with the split backward keeps (p-1)(t_f + t_b + t_w).
* ZB-V (same paper, sec. 6; Qi, Wan, Amar, Lin, "Pipeline Parallelism with Controllable
  Memory", NeurIPS 2024, arXiv 2405.15362, V-ZB): two chunks per device in a V, 1F1B's peak
  activations (p micro-batches), and zero bubble when t_f = t_b = t_w, counted as the papers
  count it (idle time between a device's first and last op; iterations overlap as a
  parallelogram because the optimizer step is post-validated). One flushed step also waits
  for the first forward to reach the last device: (p - 1) t_f / 2, half a stage per hop.
  Outside t_f = t_b = t_w the papers give no closed form: (p - 1) t_f / 2 is a lower bound.
* DualPipe (DeepSeek-AI, "DeepSeek-V3 Technical Report", arXiv 2412.19437, Table 2):
  bubble (p/2 - 1)(F&B + B - 3W), 2x parameters, p + 1 micro-batches of activations.
* PipeDream (Narayanan et al., "PipeDream: Generalized Pipeline Parallelism for DNN
  Training", SOSP 2019): asynchronous 1F1B without a flush and with weight stashing, so
  the pipeline fills once per training run and a step in the steady state has no bubble;
  stage s keeps p - s weight versions (sec. 3.3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.workload.job import LIMITS, check_positive
from perfmodel.workload.plan import SCHEDULES, check_dualpipe

__all__ = ["SCHEDULES", "bubble_fraction", "bubble_time", "step_time", "pipeline_time",
           "in_flight", "weight_versions", "layer_assignment", "check_pipeline"]

TWO_CHUNK = ("zb-v", "dualpipe")  # two chunks per device by construction (virtual stays 1)
FORWARD_SHARE = 1 / 3  # t_f / (t_f + t_b + t_w): the backward takes twice the forward


def check_pipeline(stages: int, micro_batches: int, schedule: str, virtual: int = 1) -> None:
    """One clear error per impossible pipeline.

    ZB-V and DualPipe put exactly two chunks on each device (the V's two halves of a stage;
    DualPipe's two stages, one per direction): that is the schedule's own layout, so
    ``virtual`` stays 1 for them. DualPipe needs an even number of stages and an even number
    of micro-batches, at least 2p (deepseek-ai/DualPipe ``DualPipe.step`` asserts
    ``num_ranks % 2 == 0`` and ``num_chunks % 2 == 0 and num_chunks >= num_ranks * 2``).
    """
    if schedule not in SCHEDULES:
        raise UnknownNameError(f"unknown schedule {schedule!r}", did_you_mean(schedule, SCHEDULES))
    for name, v in (("stages", stages), ("micro-batches", micro_batches), ("virtual", virtual)):
        check_positive(name, v, PlanError, f"--{name}", LIMITS["parallel"])
    if schedule == "interleaved" and micro_batches % stages:
        raise PlanError(f"interleaved 1F1B needs micro-batches ({micro_batches}) to be a "
                        f"multiple of the stages ({stages})", "Megatron-LM requires m % p == 0")
    if schedule != "interleaved" and virtual != 1:
        hint = (f"{schedule} already runs two chunks per device: use --virtual 1"
                if schedule in TWO_CHUNK else "use --schedule interleaved or --virtual 1")
        raise PlanError(f"--virtual {virtual} applies to the interleaved schedule only", hint)
    if schedule == "dualpipe":
        check_dualpipe(stages, micro_batches)


# Bubble of one flushed step of a uniform pipeline, in seconds: f, b, w per stage and
# micro-batch (whole stage), fbw = f + b + w (passed in so pipeline_time can give the exact
# mean-stage total), v chunks per device.
Bubble = Callable[[Any, Any, Any, Any, Any, Any], Any]


def _flush(p: Any, v: Any, f: Any, b: Any, w: Any, fbw: Any) -> Any:
    return (p - 1) / v * fbw  # Narayanan et al. 2021 sec. 2.2 (v = 1: GPipe and 1F1B)


def _zb_h1(p: Any, v: Any, f: Any, b: Any, w: Any, fbw: Any) -> Any:
    # Qi et al. 2024 sec. 2; never less than the last stage's fill (p - 1) t_f (t_w > t_b)
    return (p - 1) * np.maximum(f + b - w, f)


def _zb_v(p: Any, v: Any, f: Any, b: Any, w: Any, fbw: Any) -> Any:
    # the papers' zero plus the flush's fill: p - 1 hops of half a stage's forward
    return (p - 1) * f / 2


def _dualpipe(p: Any, v: Any, f: Any, b: Any, w: Any, fbw: Any) -> Any:
    # DeepSeek-V3 Table 2, (p/2 - 1)(F&B + B - 3W), in our notation: their B is the whole
    # backward (b + w), F&B = f + (b + w) without overlap -> (p/2 - 1)(f + 2b - w)
    return np.maximum((p / 2 - 1) * (f + 2 * b - w), 0.0)


def _no_flush(p: Any, v: Any, f: Any, b: Any, w: Any, fbw: Any) -> Any:
    return np.zeros_like(p * fbw)  # PipeDream: filled once per run, amortized to nothing


BUBBLES: dict[str, Bubble] = {"gpipe": _flush, "1f1b": _flush, "interleaved": _flush,
                              "zb-h1": _zb_h1, "zb-v": _zb_v, "dualpipe": _dualpipe,
                              "pipedream": _no_flush}


def _bubble(schedule: str) -> Bubble:
    if schedule not in BUBBLES:
        raise UnknownNameError(f"unknown schedule {schedule!r}", did_you_mean(schedule, SCHEDULES))
    return BUBBLES[schedule]


def bubble_time(schedule: str, stages: Any, micro_batches: Any, t_forward: Any,
                t_backward: Any, t_weight: Any = 0.0, virtual: Any = 1) -> Any:
    """Idle time (s) of one step of a uniform pipeline beyond its ideal m (t_f + t_b + t_w).

    ``t_forward``, ``t_backward``, ``t_weight``: per stage and micro-batch, whole stage (all
    its chunks); ``t_backward`` is the input gradient only when ``t_weight`` > 0. Vectorized.

    * ``"gpipe"``, ``"1f1b"``: (p-1)(t_f + t_b + t_w); ``"interleaved"``: that over v
      (Narayanan et al. SC 2021, sec. 2.2).
    * ``"zb-h1"``: (p-1)(t_f + t_b - t_w) (Qi et al. 2024, sec. 2), but never less than the
      fill of the last stage, (p-1) t_f, which it becomes when t_w > t_b. Exact in the
      simulation for m >= p; a lower bound for m < p.
    * ``"zb-v"``: (p-1) t_f / 2. The papers (Qi et al. 2024 sec. 6; arXiv 2405.15362, V-ZB)
      state zero bubble at t_f = t_b = t_w, counted between each device's first and last op
      (iterations overlap as a parallelogram once the optimizer step is post-validated); a
      flushed step adds the fill, the first forward crossing p - 1 devices at half a stage
      each. Other times have no closed form in the papers: (p-1) t_f / 2 is then a lower
      bound (every device has the same work and the last starts that late), which the
      simulated order reaches at t_f = t_b = t_w for p <= 4 (tests/sim/test_zero_bubble.py).
    * ``"dualpipe"``: DeepSeek-V3 Table 2's (p/2 - 1)(F&B + B - 3W), mapped to our notation:
      DeepSeek's B is the whole backward (t_b + t_w), W = t_w, and F&B (a forward and a
      backward chunk of two micro-batches run together) is taken without overlap as
      t_f + t_b + t_w, so (p/2 - 1)(t_f + 2 t_b - t_w), at least 0.
    * ``"pipedream"``: 0. PipeDream (Narayanan et al. SOSP 2019) never flushes: the pipeline
      fills once per training run, so a steady-state step has no bubble.

    >>> float(bubble_time("zb-h1", 4, 8, 1.0, 1.0, 1.0))  # (p-1)(1 + 1 - 1)
    3.0
    >>> float(bubble_time("1f1b", 4, 8, 1.0, 1.0, 1.0))  # (p-1)(1 + 1 + 1)
    9.0
    """
    p, v = np.asarray(stages, float), np.asarray(virtual, float)
    f, b, w = (np.asarray(t, float) for t in (t_forward, t_backward, t_weight))
    return _bubble(schedule)(p, v, f, b, w, f + b + w)


def bubble_fraction(stages: Any, micro_batches: Any, schedule: str = "1f1b",
                    virtual: Any = 1, relative_to: str = "ideal", *, t_forward: Any = 1.0,
                    t_backward: Any = 1.0, t_weight: Any = 1.0) -> Any:
    """Bubble time over the ideal time (``relative_to="ideal"``: (p-1)/m, or (p-1)/(v m)
    interleaved) or over the whole step (``"step"``: (p-1)/(m+p-1), interleaved
    (p-1)/(v m + p - 1)). Vectorized over numpy arrays.

    GPipe, 1F1B and interleaved do not depend on the times. The zero-bubble schedules do
    (:func:`bubble_time`); their default is t_f = t_b = t_w, the papers' comparison case
    (ZB-H1: (p-1)/(3m))."""
    p, m = np.asarray(stages, float), np.asarray(micro_batches, float)
    if schedule in ("gpipe", "1f1b", "interleaved"):
        v = np.asarray(virtual if schedule == "interleaved" else 1, float)
        ideal, bubble = v * m, p - 1
    else:
        ideal = m * (np.asarray(t_forward, float) + np.asarray(t_backward, float)
                     + np.asarray(t_weight, float))
        bubble = bubble_time(schedule, p, m, t_forward, t_backward, t_weight, virtual)
    if relative_to == "ideal":
        return bubble / ideal
    if relative_to == "step":
        return bubble / (ideal + bubble)
    raise UnknownNameError(f"unknown bubble reference {relative_to!r}", "use ideal or step")


def step_time(stages: Any, micro_batches: Any, t_forward: Any, t_backward: Any,
              schedule: str = "1f1b", virtual: Any = 1, t_weight: Any = 0.0) -> Any:
    """Step time of a uniform pipeline: ideal m (t_f + t_b + t_w) plus the bubble.

    ``t_forward``, ``t_backward`` and ``t_weight`` are per stage and micro-batch for the
    whole stage (all its chunks together when interleaved); see :func:`bubble_time`.
    """
    if schedule in ("gpipe", "1f1b", "interleaved"):
        ideal = np.asarray(micro_batches, float) * (np.asarray(t_forward)
                                                    + np.asarray(t_backward)
                                                    + np.asarray(t_weight))
        return ideal * (1 + bubble_fraction(stages, micro_batches, schedule, virtual))
    ideal = np.asarray(micro_batches, float) * (np.asarray(t_forward, float)
                                                + np.asarray(t_backward, float)
                                                + np.asarray(t_weight, float))
    return ideal + bubble_time(schedule, stages, micro_batches, t_forward, t_backward,
                               t_weight, virtual)


def pipeline_time(schedule: str, stages: Any, micro_batches: Any, t_max: Any, t_mean: Any,
                  t_weight_mean: Any = 0.0, virtual: Any = 1, *,
                  forward_share: Any = FORWARD_SHARE) -> Any:
    """Flush time (s) of a pipeline whose slowest stage takes ``t_max`` and whose mean
    stage ``t_mean`` per micro-batch (forward + backward + weight gradient, whole stage):
    m t_max + the bubble of a uniform pipeline of mean stages (:func:`bubble_time`).

    The mean stage splits as t_f = ``forward_share`` x t_mean, t_w = ``t_weight_mean``
    (0: the backward includes the weight gradient) and t_b = the rest. GPipe, 1F1B and
    interleaved need only the total: m t_max + (p - 1)/v t_mean, exactly. Vectorized.

    >>> float(pipeline_time("1f1b", 4, 8, 3.0, 3.0))
    33.0
    >>> float(pipeline_time("zb-h1", 4, 8, 3.0, 3.0, 1.0))  # t_f = t_b = t_w = 1: 24 + 3
    27.0
    """
    p, m, v = (np.asarray(x, float) for x in (stages, micro_batches, virtual))
    total = np.asarray(t_mean, float)
    f = np.asarray(forward_share, float) * total
    w = np.asarray(t_weight_mean, float)
    b = total - f - w
    if np.any(b < -1e-12 * np.abs(total)):
        raise PlanError("the forward share and the weight-gradient time exceed the mean "
                        "stage time", "check forward_share (0..1) and t_weight_mean")
    return m * np.asarray(t_max, float) + _bubble(schedule)(p, v, f, b, w, total)


# Activations held at the peak, in micro-batches through the whole stage: the worst stage
# unless ``stage`` is honoured (1F1B and ZB-H1 p - s, PipeDream p - s, GPipe m).
def _in_flight_interleaved(p: Any, m: Any, v: Any, s: Any) -> Any:
    return np.minimum(p * (1 + (p - 1) / (p * v)), m)  # Korthikanti et al. 2023 sec. 4.2.3


IN_FLIGHT: dict[str, Callable[[Any, Any, Any, Any], Any]] = {
    "gpipe": lambda p, m, v, s: m,
    "1f1b": lambda p, m, v, s: np.minimum(p - s, m),
    "interleaved": _in_flight_interleaved,
    "zb-h1": lambda p, m, v, s: np.minimum(p - s, m),  # 1F1B's (Qi et al. 2024 sec. 2.1)
    "zb-v": lambda p, m, v, s: np.minimum(p, m),  # p on every device (Qi et al. sec. 6)
    "dualpipe": lambda p, m, v, s: p + 1,  # DeepSeek-V3 Table 2 (m >= 2p always)
    "pipedream": lambda p, m, v, s: p - s,  # no flush: m does not bound it
}


def in_flight(stages: Any, micro_batches: Any, schedule: str = "1f1b", virtual: Any = 1,
              stage: Any = 0) -> Any:
    """Micro-batches whose activations a stage holds at its peak (in units of one
    micro-batch through the whole stage), by default on the first stage, the worst.

    GPipe m; 1F1B and ZB-H1 min(p - s, m); interleaved min(p (1 + (p-1)/(p v)), m);
    ZB-V min(p, m) on every device; DualPipe p + 1 (DeepSeek-V3 Table 2); PipeDream p - s.
    """
    if schedule not in IN_FLIGHT:
        raise UnknownNameError(f"unknown schedule {schedule!r}", did_you_mean(schedule, SCHEDULES))
    return IN_FLIGHT[schedule](np.asarray(stages), np.asarray(micro_batches),
                               np.asarray(virtual, float), np.asarray(stage))


def weight_versions(schedule: str, stages: Any, stage: Any = 0) -> Any:
    """Copies of its weights a pipeline device holds (what the memory model multiplies the
    weights by). PipeDream's weight stashing keeps one version per micro-batch in flight,
    p - s on stage s (Narayanan et al. SOSP 2019, sec. 3.3): p on stage 0, the worst.
    DualPipe holds two stages per device, 2x the parameters (DeepSeek-V3 Table 2). Others 1.

    >>> int(weight_versions("pipedream", 4)), int(weight_versions("pipedream", 4, stage=3))
    (4, 1)
    """
    if schedule not in SCHEDULES:
        raise UnknownNameError(f"unknown schedule {schedule!r}", did_you_mean(schedule, SCHEDULES))
    p, s = np.asarray(stages), np.asarray(stage)
    if schedule == "pipedream":
        return p - s
    return np.full(np.broadcast(p, s).shape, 2 if schedule == "dualpipe" else 1)


def layer_assignment(num_layers: int, stages: int, virtual: int = 1) -> list[list[int]]:
    """Layers held by each device. Megatron-LM's interleaved assignment: the model is cut
    into stages x virtual chunks of consecutive layers, and chunk c goes to device c mod p.
    The seed's example: 16 layers, 4 devices, v = 2 -> device 0 holds 0-1 and 8-9."""
    chunks = stages * virtual
    if num_layers % chunks:
        raise PlanError(f"{num_layers} layers do not split into {stages} stages x {virtual} "
                        "chunks", "choose stages x virtual dividing the layer count")
    size = num_layers // chunks
    devices: list[list[int]] = [[] for _ in range(stages)]
    for c in range(chunks):
        devices[c % stages].extend(range(c * size, (c + 1) * size))
    return devices
