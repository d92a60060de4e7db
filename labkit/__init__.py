"""labkit: the Huber–Laplace lab (G. P. Meyer, "An Alternative Probabilistic Interpretation of the Huber Loss").

Ground floor: :mod:`labkit.losses` (H_α, D_{α,β}, the Laplace KL) and :mod:`labkit.densities`.
"""
from pathlib import Path

__version__ = "0.1.0"

#: the project checkout this package runs from (notebooks/, data/, results/ live beside labkit/): the one place that
#: says where the project is
PROJECT_ROOT = Path(__file__).resolve().parents[1]
