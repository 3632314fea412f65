"""Data-parallel training of a model without a transformer shape (PyTorch DDP)."""

import pytest

from perfmodel.errors import PlanError
from perfmodel.hardware.system import load_system
from perfmodel.parallel.ddp import DDP_BUCKET_BYTES
from perfmodel.parallel.step import predict_step
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan
from perfmodel.zoo.registry import load_model


@pytest.fixture(scope="module")
def resnet():
    return load_model("resnet50"), load_system("dgx-a100")


def _job(d: int) -> Job:
    return Job(phase="train", batch=256 * d, dtype="fp16", optimizer="sgd")


def test_bucketed_all_reduce_hides_under_the_backward_but_the_last_bucket(resnet):
    g, s = resnet
    r = predict_step(g, _job(8), ParallelPlan(data_parallel=8, micro_batch=256), s)
    ddp = r.assumptions["data_parallel"]
    assert "25 MiB buckets" in ddp
    one = predict_step(g, _job(1), ParallelPlan(micro_batch=256), s)
    # the same per-device work: compute and optimizer equal; 8 GPUs add only the exposed
    # all-reduce, here the last bucket: 25 MiB of the 2 x 25.56 M = 51.1 MB of fp16
    # gradients (ResNet-50 v1.5: 25,557,032 parameters), i.e. 0.513 of the all-reduce
    assert r.breakdown["compute"] == pytest.approx(one.breakdown["compute"])
    grads = 2 * g.params
    assert grads == pytest.approx(51_114_064)
    ar = r.step_s - r.breakdown["compute"] - r.breakdown["optimizer"]
    assert ar == pytest.approx(r.breakdown["dp_comm"])
    assert one.breakdown["dp_comm"] == 0
    assert r.tokens_per_s == pytest.approx(256 * 8 / r.step_s)  # samples per second


def test_without_overlap_the_whole_all_reduce_is_exposed(resnet):
    g, s = resnet
    plan = ParallelPlan(data_parallel=16, micro_batch=256)
    overlapped = predict_step(g, _job(16), plan, s)
    exposed = predict_step(g, _job(16), ParallelPlan(data_parallel=16, micro_batch=256,
                                                     overlap_grad_reduce=False), s)
    frac = min(1.0, DDP_BUCKET_BYTES / (2 * g.params))
    assert overlapped.breakdown["dp_comm"] == pytest.approx(
        frac * exposed.breakdown["dp_comm"])  # the last bucket's share of the all-reduce


def test_only_data_parallelism_without_a_transformer_shape(resnet):
    g, s = resnet
    with pytest.raises(PlanError, match="only data parallelism"):
        predict_step(g, _job(1), ParallelPlan(tensor_parallel=2, micro_batch=128), s)
    with pytest.raises(PlanError, match="recomputation"):
        predict_step(g, _job(1), ParallelPlan(recompute="full", micro_batch=256), s)
