"""labkit.densities against scipy.stats and numerical quadrature."""
import numpy as np
import pytest
import torch
from scipy import integrate, stats

from labkit.densities import huber_density, huber_density_normaliser, laplace_pdf, normal_pdf
from labkit.losses import huber


def test_normal_and_laplace_match_scipy():
    x = np.linspace(-6, 6, 241)
    np.testing.assert_allclose(normal_pdf(x), stats.norm.pdf(x), rtol=1e-13)
    np.testing.assert_allclose(normal_pdf(x, 0.5, 2.0), stats.norm.pdf(x, 0.5, 2.0), rtol=1e-13)
    np.testing.assert_allclose(laplace_pdf(x), stats.laplace.pdf(x), rtol=1e-13)
    np.testing.assert_allclose(laplace_pdf(x, -1.0, 0.3), stats.laplace.pdf(x, -1.0, 0.3), rtol=1e-13)


@pytest.mark.parametrize("alpha", np.logspace(-2, 2, 9))
def test_huber_density_integrates_to_one(alpha):
    # split at the kinks ±α; the tails decay like exp(−α|x|), so ±(α + 60/α) holds all but e^-60 of the mass
    edge = alpha + 60.0 / alpha
    pieces = [(-edge, -alpha), (-alpha, alpha), (alpha, edge)]
    total = sum(integrate.quad(lambda t: huber_density(t, alpha), lo, hi, epsabs=1e-14, epsrel=1e-12)[0]
                for lo, hi in pieces)
    assert total == pytest.approx(1.0, rel=1e-9)


def test_huber_density_shape():
    x = np.linspace(-3, 3, 61)
    p = huber_density(x, 1.0)
    # proportional to exp(−H_α) (eq. 11): the ratio to exp(−H) is the constant 1/Z
    ratio = p / np.exp(-huber(x, 1.0))
    np.testing.assert_allclose(ratio, 1.0 / huber_density_normaliser(1.0), rtol=1e-13)
    # large α: the density becomes the standard normal
    np.testing.assert_allclose(huber_density(x, 50.0), stats.norm.pdf(x), rtol=1e-12)
    t = torch.tensor(x, dtype=torch.float32)
    assert huber_density(t, 1.0).dtype == torch.float32


def test_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        normal_pdf(0.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="b"):
        laplace_pdf(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        huber_density(0.0, float("inf"))
