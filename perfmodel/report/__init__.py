"""Figures and reports (matplotlib is imported lazily, inside the functions)."""
