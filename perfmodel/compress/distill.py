"""Knowledge distillation: the deployed cost is the student's (DOMAIN.md section 3).

Hinton et al., "Distilling the knowledge in a neural network", 2015: a small student is
trained on the teacher's temperature-softened outputs. The temperature and the loss are
training details; what runs on the hardware is the student, so the transform returns the
student's graph, checked to take the same input and give the same output shape.
"""

from __future__ import annotations

from dataclasses import replace

from perfmodel.errors import PlanError
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["distill"]


def _output_shape(graph: ModelGraph) -> tuple:
    sinks = [op for op in graph.ops if graph.graph.out_degree(op.name) == 0]
    return sinks[-1].outputs[0].shape if sinks else ()


def distill(teacher: ModelGraph, student: ModelGraph) -> ModelGraph:
    """The student, in place of the teacher; same inputs and output shape required."""
    t_in = [t.shape for t in teacher.inputs]
    s_in = [t.shape for t in student.inputs]
    if t_in != s_in:
        raise PlanError(f"student {student.name!r} takes {s_in}, teacher {teacher.name!r} "
                        f"takes {t_in}", "pick a student with the teacher's input")
    if _output_shape(teacher) != _output_shape(student):
        raise PlanError(f"student {student.name!r} outputs {_output_shape(student)}, teacher "
                        f"outputs {_output_shape(teacher)}",
                        "pick a student with the same number of outputs")
    meta = {**student.meta, "teacher": teacher.name}
    return replace(student, name=f"{teacher.name}->{student.name}", meta=meta)
