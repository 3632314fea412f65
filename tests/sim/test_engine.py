"""ClusterSim: exact timelines for tiny cases, contention, stragglers, determinism."""

from __future__ import annotations

import networkx as nx
import pytest
import simpy

from perfmodel.errors import PlanError, ShapeError
from perfmodel.sim.engine import ClusterSim


def star(bw: float = 1.0, lat: float = 0.0) -> nx.DiGraph:
    """a and b feed switch s, which feeds c: a->c and b->c share the link s->c."""
    g = nx.DiGraph()
    for u, v in (("a", "s"), ("b", "s"), ("s", "c")):
        g.add_edge(u, v, bandwidth_Bps=bw, latency_s=lat, level="scale_up")
    return g


def flows(sim: ClusterSim, specs: list[tuple[str, str, float, int]]) -> None:
    def flow(src, dst, nbytes, chunks):
        for j in range(chunks):
            yield from sim.transfer(src, dst, nbytes / chunks, f"{src}.{j}")
    for src, dst, nbytes, chunks in specs:
        sim.env.process(flow(src, dst, nbytes, chunks))


def test_one_flow_alone_takes_bytes_over_bandwidth():
    sim = ClusterSim(star())
    flows(sim, [("a", "c", 1.0, 1)])
    r = sim.run()
    assert r.time_s == 1.0
    assert r.timeline.tuples() == [("a->s", 0.0, 1.0, "a.0"), ("s->c", 0.0, 1.0, "a.0")]


def test_contention_doubles_transfer_time_on_a_link_shared_by_two_equal_flows():
    sim = ClusterSim(star())
    flows(sim, [("a", "c", 1.0, 1), ("b", "c", 1.0, 1)])
    r = sim.run()
    assert r.time_s == 2.0  # each alone: 1 s; sharing s->c: the second ends at 2 s
    assert r.timeline.tuples() == [
        ("a->s", 0.0, 1.0, "a.0"), ("s->c", 0.0, 1.0, "a.0"),
        ("b->s", 1.0, 2.0, "b.0"), ("s->c", 1.0, 2.0, "b.0")]
    assert r.timeline.busy_s()["s->c"] == 2.0


def test_chunked_flows_interleave_and_still_take_twice_as_long():
    sim = ClusterSim(star())
    flows(sim, [("a", "c", 1.0, 4), ("b", "c", 1.0, 4)])
    r = sim.run()
    assert r.time_s == pytest.approx(2.0)
    ends = r.timeline.events.groupby(r.timeline.events["label"].str[0])["end"].max()
    assert ends["a"] < 2.0 and ends["b"] == pytest.approx(2.0)  # interleaved, FIFO


def test_latency_delays_arrival_but_does_not_hold_the_link():
    sim = ClusterSim(star(lat=0.5))
    done = sim.arrival()

    def one():
        yield from sim.transfer("a", "c", 1.0, "x", done)
        yield done

    sim.env.process(one())
    r = sim.run()
    assert r.time_s == 1.5
    assert r.timeline.tuples()[0] == ("a->s", 0.0, 1.0, "x")  # held 1 s, arrived 0.5 s later


def test_device_and_link_slowdowns():
    sim = ClusterSim(star(), device_slowdown={"a": 2.0})
    flows(sim, [("a", "c", 1.0, 1)])
    assert sim.run().time_s == 2.0
    sim = ClusterSim(star(), link_slowdown={("s", "c"): 4.0})
    flows(sim, [("a", "c", 1.0, 1)])
    assert sim.run().time_s == 4.0


def test_efficiency_scales_a_level():
    sim = ClusterSim(star(), efficiency={"scale_up": 0.5})
    flows(sim, [("a", "c", 1.0, 1)])
    assert sim.run().time_s == 2.0


def test_start_time_is_the_launch_latency():
    sim = ClusterSim(star(), start_s=3.0)
    flows(sim, [("a", "c", 1.0, 1)])
    r = sim.run()
    assert r.time_s == 4.0 and r.timeline.tuples()[0][1] == 3.0


def test_bad_slowdowns_and_routes_are_our_errors():
    with pytest.raises(PlanError, match="unknown device"):
        ClusterSim(star(), device_slowdown={"zz": 2.0})
    with pytest.raises(ShapeError, match=">= 1"):
        ClusterSim(star(), device_slowdown={"a": 0.5})
    sim = ClusterSim(star())
    with pytest.raises(PlanError, match="no route"):
        sim.route("c", "a")


def test_events_are_counted():
    sim = ClusterSim(star())
    flows(sim, [("a", "c", 1.0, 2)])
    assert sim.run().events > 0


def _resource_reference(graph: nx.DiGraph, specs: list[tuple[float, str, str, float, int]]
                        ) -> list[tuple[str, float, float, str]]:
    """The same flows on one ``simpy.Resource(capacity=1)`` per link (every link of a route
    requested at one instant, held together, released together): the model ClusterSim's
    next-free-time links must reproduce exactly."""
    env = simpy.Environment()
    res = {e: simpy.Resource(env, capacity=1) for e in graph.edges}
    out: list[tuple[str, float, float, str]] = []

    def flow(delay, src, dst, nbytes, chunks):
        yield env.timeout(delay)
        path = nx.shortest_path(graph, src, dst)
        edges = sorted(zip(path[:-1], path[1:], strict=True))
        bw = min(graph.edges[e]["bandwidth_Bps"] for e in edges)
        for j in range(chunks):
            reqs = [res[e].request() for e in edges]
            for r in reqs:
                yield r
            start = env.now
            yield env.timeout(nbytes / chunks / bw)
            for e, r in zip(edges, reqs, strict=True):
                res[e].release(r)
            out.extend((f"{u}->{v}", start, env.now, f"{src}.{j}") for u, v in edges)

    for spec in specs:
        env.process(flow(*spec))
    env.run()
    return sorted(out, key=lambda t: (t[1], t[0]))


def test_next_free_time_links_equal_simpy_resources_under_contention():
    # three sources share s->c, two also share a->s / b->s with other flows; chunked, with
    # staggered starts, so links queue several holds at once
    g = star()
    g.add_edge("s", "d", bandwidth_Bps=2.0, latency_s=0.0, level="scale_up")
    specs = [(0.0, "a", "c", 3.0, 3), (0.5, "b", "c", 2.0, 4), (0.25, "a", "d", 4.0, 2),
             (1.0, "b", "d", 1.0, 1), (0.75, "a", "c", 1.0, 2)]
    sim = ClusterSim(g)

    def flow(delay, src, dst, nbytes, chunks):
        yield sim.env.timeout(delay)
        for j in range(chunks):
            yield from sim.transfer(src, dst, nbytes / chunks, f"{src}.{j}")

    for spec in specs:
        sim.env.process(flow(*spec))
    got = sim.run().timeline.tuples()
    assert got == _resource_reference(g, specs)
    assert len(got) == 2 * sum(s[4] for s in specs)  # every hold on both links of its route
