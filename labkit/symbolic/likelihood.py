"""Section 4's set-up in SymPy: the noise model (eqs. 12–13, 16–17), KL = cross entropy − entropy (eqs. 14–15), and
the Dirac-delta label limit that turns the KL objective back into maximum likelihood (Section 3.2, eqs. 7–10).

:func:`derive_noise_model` shows that a label (or prediction) plus Laplace noise has the shifted Laplace density of
eq. 16 (17) — through the distribution function, integrated and differentiated by SymPy — and that its scale is the
mean absolute error. :func:`derive_cross_entropy` takes the Appendix A results (:func:`labkit.symbolic.kl.derive_kl`)
and shows eq. 15: the KL and the cross entropy differ by the entropy of p, which does not depend on the prediction;
as the label scale b₁ → 0 the cross entropy tends to −log q(y), the negative log-likelihood of the prediction density
(L1 for a Laplace q; for a Gaussian q the same limit gives eq. 9's squared error).
"""
from __future__ import annotations

import functools

import sympy
from sympy import Abs, exp, log, oo, pi, sqrt

from labkit.symbolic.kl import b1, b2, derive_kl, mu1, mu2
from labkit.symbolic.steps import Step, is_zero

__all__ = ["derive_noise_model", "derive_cross_entropy", "laplace_density", "cross_entropy_expr"]

t = sympy.Symbol("t", real=True)  # a value of the hidden true target y*
v = sympy.Symbol("v", positive=True)  # a distance from the centre
e = sympy.Symbol("e", real=True)  # a noise value


def laplace_density(at: sympy.Expr, centre: sympy.Expr, scale: sympy.Expr) -> sympy.Expr:
    """The Laplace density of eqs. 16–17: exp(−|at − centre|/scale) / (2·scale)."""
    return exp(-Abs(at - centre) / scale) / (2 * scale)


def _shifted(eq: str, centre: str, noise: str, scale: sympy.Symbol, density: str, because: str) -> Step:
    """y* = centre + ε, ε ~ Laplace(0, b): P(y* ≤ t) = P(ε ≤ t − centre); its t-derivative is the density."""
    noise_pdf = laplace_density(e, 0, scale)
    left, right = noise_pdf.subs(Abs(e), -e), noise_pdf.subs(Abs(e), e)  # the density on e < 0 and on e > 0
    cdf_above = sympy.integrate(left, (e, -oo, 0)) + sympy.integrate(right, (e, 0, v))  # t − centre = v > 0
    cdf_below = sympy.integrate(left, (e, -oo, -v))  # t − centre = −v < 0
    # d/dt = d/dv above the centre and −d/dv below it
    pdf_above, pdf_below = sympy.diff(cdf_above, v), -sympy.diff(cdf_below, v)
    c = sympy.Symbol("c", real=True)
    claim = laplace_density(t, c, scale)
    held = is_zero(pdf_above - claim.subs(t, c + v)) and is_zero(pdf_below - claim.subs(t, c - v))
    statement = (rf"y^* = {centre} + {noise},\ {noise} \sim \mathrm{{Laplace}}(0, {sympy.latex(scale)})"
                 rf"\ \Longrightarrow\ {density} = \frac{{1}}{{2{sympy.latex(scale)}}}"
                 rf"\exp\Big(-\frac{{|y^* - {centre}|}}{{{sympy.latex(scale)}}}\Big)")
    return Step(eq, statement, sympy.Tuple(cdf_above, cdf_below), held,
                f"P(y* ≤ t) = 1 − e^(−v/b)/2 above the centre (t = centre + v) and e^(−v/b)/2 below it "
                f"(t = centre − v), integrated by SymPy; differentiated in t they give eq. {eq.split(', ')[-1]}",
                because)


@functools.lru_cache(maxsize=None)
def derive_noise_model() -> tuple[Step, ...]:
    """Eqs. 12 → 16 and 13 → 17, and the meaning of the scales: E|ε| = b (eq. 16's b₁ is the mean label error)."""
    steps = [_shifted("12, 16", "y_i", r"\epsilon_1", b1, r"p(y^*\mid y_i)",
                      "The label is the hidden truth up to noise; shifting the noise density by the label gives the "
                      "density of the truth given the label."),
             _shifted("13, 17", r"F_\theta(x_i)", r"\epsilon_2", b2, r"q(y^*\mid x_i,\theta)",
                      "The same for the model: its prediction is the truth up to its own noise, of scale $b_2$.")]
    mean_abs = sympy.integrate(2 * e * laplace_density(e, 0, b1).subs(Abs(e), e), (e, 0, oo))  # symmetric
    variance = sympy.integrate(2 * e**2 * laplace_density(e, 0, b1).subs(Abs(e), e), (e, 0, oo))
    steps.append(Step("16", r"\mathbb{E}\,|\epsilon_1| = " + sympy.latex(mean_abs) + r",\quad \mathrm{Var}\,\epsilon_1 = "
                      + sympy.latex(variance), sympy.Tuple(mean_abs, variance),
                      is_zero(mean_abs - b1) and is_zero(variance - 2 * b1**2),
                      "2∫₀^∞ e·p(e) de and 2∫₀^∞ e²·p(e) de (the density is even)",
                      "The scale $b_1$ is the average size of the label error, which is what makes it easy to "
                      "choose: a labeller off by 2 pixels on average means $b_1 = 2$ px."))
    return tuple(steps)


def cross_entropy_expr() -> sympy.Expr:
    """−∫ p log q for p = Laplace(μ₁, b₁), q = Laplace(μ₂, b₂), as Appendix A derived it (eq. 61)."""
    steps, _ = derive_kl()
    (cross,) = [s for s in steps if s.eq == "61"]
    return (b1 * exp(-Abs(mu1 - mu2) / b1) + Abs(mu1 - mu2)) / b2 + log(2 * b2) if cross.held else sympy.nan


@functools.lru_cache(maxsize=None)
def derive_cross_entropy() -> tuple[Step, ...]:
    """Eq. 15 (KL = cross entropy − entropy, the entropy free of the prediction) and the Dirac limit b₁ → 0."""
    appendix, kl = derive_kl()
    by_eq = {s.eq: s for s in appendix}
    cross, entropy = cross_entropy_expr(), 1 + log(2 * b1)  # eqs. 61, 62 (checked in Appendix A)
    steps = []
    gap = sympy.simplify(kl - (cross - entropy))
    free = [sympy.diff(entropy, s) for s in (mu2, b2)]
    steps.append(Step("15", r"D(p\,\|\,q) = \underbrace{-\int p\log q\,dy^*}_{\text{cross entropy}} - "
                      r"\underbrace{\Big(-\int p\log p\,dy^*\Big)}_{\text{entropy of } p,\ 1 + \log 2b_1},\quad "
                      r"\frac{\partial}{\partial F_\theta}\,(1 + \log 2b_1) = 0",
                      sympy.Tuple(gap, *free), is_zero(gap) and all(f == 0 for f in free)
                      and by_eq["61"].held and by_eq["62"].held,
                      "eq. 63 minus (eq. 61 − eq. 62) simplifies to 0; the entropy has no μ₂ (= F) and no b₂ in it",
                      "The entropy of the label density does not move with the prediction, so minimising the KL "
                      "(eq. 14) over $\\theta$ is minimising the cross entropy (eq. 15)."))
    d = sympy.Symbol("d", positive=True)  # |μ₁ − μ₂| = |y − F|
    limit_cross = sympy.limit(cross.subs(Abs(mu1 - mu2), d), b1, 0, "+")
    nll = sympy.expand_log(-log(laplace_density(mu1, mu2, b2)), force=True).subs(Abs(mu1 - mu2), d)
    steps.append(Step("15", r"\lim_{b_1\to 0^+} \Big(-\int p\log q\,dy^*\Big) = \frac{|y_i - F_\theta(x_i)|}{b_2} "
                      r"+ \log 2b_2 = -\log q(y_i\mid x_i,\theta)", sympy.Tuple(limit_cross, nll),
                      is_zero(limit_cross - nll), "sympy.limit of eq. 61 as b₁ → 0⁺, with d = |μ₁ − μ₂| > 0",
                      "A label with no noise is a Dirac delta at $y_i$: the cross entropy becomes the negative "
                      "log-likelihood of the label under the prediction density — maximum likelihood (eq. 7), here "
                      "the $L_1$ loss."))
    limit_kl = sympy.limit(kl.subs(Abs(mu1 - mu2), d), b1, 0, "+")
    steps.append(Step("15", r"\lim_{b_1\to 0^+} D(p\,\|\,q) = " + sympy.latex(limit_kl), limit_kl, limit_kl == oo,
                      "sympy.limit of eq. 63 as b₁ → 0⁺",
                      "The KL itself blows up (the entropy $1 + \\log 2b_1 \\to -\\infty$), but only through a "
                      "constant: its minimiser over $\\theta$ is still the maximum-likelihood one."))
    sigma, s = sympy.Symbol("sigma", positive=True), sympy.Symbol("s", positive=True)
    neg_log_gauss = (t - mu2)**2 / (2 * sigma**2) + log(sqrt(2 * pi) * sigma)  # eq. 9 with y = t, F = μ₂
    p_of = laplace_density(t, mu1, b1)
    gauss_cross = sympy.simplify(
        sympy.integrate((p_of * neg_log_gauss).subs(t, mu1 + s).subs(Abs(s), s), (s, 0, oo))
        + sympy.integrate((p_of * neg_log_gauss).subs(t, mu1 - s).subs(Abs(-s), s), (s, 0, oo)))
    limit_gauss = sympy.limit(gauss_cross, b1, 0, "+")
    typed = ((mu1 - mu2)**2 + 2 * b1**2) / (2 * sigma**2) + log(sqrt(2 * pi) * sigma)  # as shown below
    held = (is_zero(sympy.expand_log(gauss_cross - typed, force=True))
            and is_zero(sympy.expand_log(limit_gauss - neg_log_gauss.subs(t, mu1), force=True)))
    steps.append(Step("9, 15", r"q = \mathcal{N}(F_\theta(x_i), \sigma^2):\ -\int p\log q\,dy^* = "
                      r"\frac{(y_i - F_\theta(x_i))^2 + 2b_1^2}{2\sigma^2} + \log\sqrt{2\pi}\,\sigma"
                      r"\ \xrightarrow{\,b_1\to 0^+\,}\ \frac{(y_i - F_\theta(x_i))^2}{2\sigma^2} + "
                      r"\log\sqrt{2\pi}\,\sigma", sympy.Tuple(gauss_cross, limit_gauss), held,
                      "∫ p·(−log N) split at μ₁ and integrated by SymPy; the limit is eq. 9 with y = μ₁",
                      "The limit does not depend on the shape of q: with a Gaussian prediction density it gives "
                      "eq. 9, the squared error of $L_2$ regression (the label noise adds $b_1^2/\\sigma^2$ "
                      "before the limit)."))
    return tuple(steps)
