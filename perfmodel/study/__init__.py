"""What-if studies over devices and settings: grids of predictions priced at once
(``grid``, ``vectorized``, ``run``: ``pm.sweep``) and the sensitivity of a prediction to every
spec figure (``sensitivity``)."""
