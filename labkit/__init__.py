"""labkit: the Huber–Laplace lab (G. P. Meyer, "An Alternative Probabilistic Interpretation of the Huber Loss").

Ground floor: :mod:`labkit.losses` (H_α, D_{α,β}, the Laplace KL) and :mod:`labkit.densities`.
"""
__version__ = "0.1.0"
