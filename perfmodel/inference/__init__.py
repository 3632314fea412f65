"""End-to-end inference: engine profiles, per-GPU sharding, generation timing (``infer``)."""
