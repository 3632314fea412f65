"""What-if studies over devices and settings: sensitivity of a prediction to every spec
figure (more to come: grids, design-space exploration)."""
