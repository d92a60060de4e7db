"""Appendix A in SymPy: the KL divergence of two Laplace distributions (eqs. 54–63), and the loss D_{α,β} (eq. 19).

:func:`derive_kl` integrates the cross entropy (eq. 57) piece by piece on each side of μ₁ ≥ μ₂ (eq. 58) and
μ₁ < μ₂ (eq. 59) with ``sympy.integrate``, joins the two cases into eqs. 60–61, integrates the entropy (eq. 62) and
subtracts (eq. 63); :func:`derive_loss` specialises the result to eq. 18 and turns it into the loss eq. 19.
:func:`loss_parameters` reads (α, β) back off any expression that is a D_{α,β}; Sections 4.3 and 5 use it.
"""
from __future__ import annotations

import functools

import sympy
from sympy import Abs, exp, log

from labkit.symbolic.steps import Step, is_zero

__all__ = ["laplace_kl_loss_expr", "loss_parameters", "derive_kl", "derive_loss", "kl_divergence_expr"]


def laplace_kl_loss_expr(x: sympy.Expr, alpha: sympy.Expr, beta: sympy.Expr) -> sympy.Expr:
    """The proposed loss D_{α,β}(x) of eq. 19 as a SymPy expression (α: label scale b₁, β: prediction scale b₂)."""
    return (alpha * exp(-Abs(x) / alpha) + Abs(x) - alpha) / beta


def loss_parameters(expr: sympy.Expr, x: sympy.Symbol) -> tuple[sympy.Expr, sympy.Expr]:
    """Solve for (a, b) such that ``expr`` ≡ D_{a,b}(x) for x ≥ 0, and verify the identity.

    D_{a,b} has D''(0) = 1/(ab) and D'''(0⁺) = −1/(a²b) (from eq. 22), two equations that fix a and b; the whole
    identity is then checked by simplification. Raises ``ValueError`` when ``expr`` is not of the form D_{a,b}.
    """
    u = sympy.Symbol("u", positive=True)
    a, b = sympy.symbols("a b", positive=True)
    e = expr.subs(x, u)
    target = laplace_kl_loss_expr(u, a, b)
    equations = [sympy.Eq(sympy.diff(e, u, k).subs(u, 0), sympy.diff(target, u, k).subs(u, 0)) for k in (2, 3)]
    solutions = sympy.solve(equations, [a, b], dict=True)
    for sol in solutions:
        if is_zero(e - target.subs(sol)):
            return sympy.simplify(sol[a]), sympy.simplify(sol[b])
    raise ValueError(f"expr is not of the form D_(a,b)({x}) (eq. 19): {expr}")


# p = Laplace(μ₁, b₁) (eq. 55), q = Laplace(μ₂, b₂) (eq. 56)
x = sympy.Symbol("x", real=True)
mu1, mu2 = sympy.symbols("mu1 mu2", real=True)
b1, b2 = sympy.symbols("b1 b2", positive=True)


def _laplace(at: sympy.Expr, mu: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """The Laplace density of eqs. 55–56."""
    return exp(-Abs(at - mu) / b) / (2 * b)


def kl_divergence_expr(mu_1=mu1, b_1=b1, mu_2=mu2, b_2=b2) -> sympy.Expr:
    """The closed form eq. 63 as the paper states it — the claim :func:`derive_kl` must arrive at."""
    return (b_1 * exp(-Abs(mu_1 - mu_2) / b_1) + Abs(mu_1 - mu_2)) / b_2 + log(b_2 / b_1) - 1


def _ordered(order: tuple[sympy.Symbol, ...]) -> dict:
    """Place the three points of ``order`` (smallest first) on the line with positive gaps p, q."""
    m = sympy.Symbol("m", real=True)
    p, q = sympy.symbols("p q", positive=True)
    return dict(zip(order, (m, m + p, m + p + q)))


def _pieces(case: str) -> list[tuple[sympy.Expr, sympy.Expr, sympy.Expr, tuple]]:
    """(integrand without absolute values, lower, upper, ordering) for eq. 58 (μ₁ ≥ μ₂) or eq. 59 (μ₁ < μ₂)."""
    k = 1 / (2 * b1 * b2)
    if case == "mu1>=mu2":
        return [(k * (mu2 - x) * exp(-(mu1 - x) / b1), -sympy.oo, mu2, (x, mu2, mu1)),
                (k * (x - mu2) * exp(-(mu1 - x) / b1), mu2, mu1, (mu2, x, mu1)),
                (k * (x - mu2) * exp(-(x - mu1) / b1), mu1, sympy.oo, (mu2, mu1, x))]
    return [(k * (mu2 - x) * exp(-(mu1 - x) / b1), -sympy.oo, mu1, (x, mu1, mu2)),
            (k * (mu2 - x) * exp(-(x - mu1) / b1), mu1, mu2, (mu1, x, mu2)),
            (k * (x - mu2) * exp(-(x - mu1) / b1), mu2, sympy.oo, (mu1, mu2, x))]


@functools.lru_cache(maxsize=None)
def derive_kl() -> tuple[tuple[Step, ...], sympy.Expr]:
    """Appendix A step by step; returns (steps, KL) where KL is the expression SymPy arrived at (eq. 63)."""
    steps = []
    p, q = _laplace(x, mu1, b1), _laplace(x, mu2, b2)
    # eq. 57: −log q = |x − μ₂|/b₂ + log(2b₂), and p integrates to 1, so the constant comes out of the integral
    neg_log_q = sympy.expand_log(-log(q), force=True)
    total_p = sum(sympy.integrate(p.subs(Abs(x - mu1), s * (x - mu1)), lim, conds="none")
                  for s, lim in ((-1, (x, -sympy.oo, mu1)), (1, (x, mu1, sympy.oo))))
    kernel = Abs(x - mu2) / (2 * b1 * b2) * exp(-Abs(x - mu1) / b1)
    steps.append(Step("57", r"-\log q(x) = \frac{|x-\mu_2|}{b_2} + \log 2b_2,\quad \int p\,dx = " + sympy.latex(total_p),
                      sympy.Tuple(neg_log_q, total_p),
                      is_zero(neg_log_q - Abs(x - mu2) / b2 - log(2 * b2)) and is_zero(total_p - 1),
                      "expand −log q; integrate p on each side of μ₁",
                      because="The cross entropy $-\\int p\\log q$ is the only hard part of eq. 54; taking the log "
                              "of the Laplace density leaves $|x - \\mu_2|$ and a constant, and $p$ integrates to 1."))
    cases = {}
    for eq, case, cond in (("58", "mu1>=mu2", r"\mu_1 \ge \mu_2"), ("59", "mu1<mu2", r"\mu_1 < \mu_2")):
        pieces = _pieces(case)
        # each piece's integrand is the kernel with its absolute values resolved on that interval
        resolved = all(is_zero((kernel - f).subs(_ordered(order))) for f, _, _, order in pieces)
        values = [sympy.integrate(f, (x, lo, hi), conds="none") for f, lo, hi, _ in pieces]
        cases[case] = sympy.simplify(sum(values))
        statement = (r"\text{for } " + cond + r":\ \int \frac{|x-\mu_2|}{2b_1b_2}e^{-|x-\mu_1|/b_1}dx = "
                     + " + ".join(sympy.latex(sympy.Integral(f, (x, lo, hi))) for f, lo, hi, _ in pieces))
        steps.append(Step(eq, statement, sympy.Tuple(*values), resolved,
                          "absolute values resolved on each interval; each piece integrated by sympy.integrate",
                          because="The two absolute values change sign at $\\mu_1$ and $\\mu_2$; cutting the line "
                                  "there leaves three ordinary integrals of a line times an exponential."))
    d = sympy.Symbol("d", positive=True)
    paper_60 = {"mu1>=mu2": (b1 * exp(-(mu1 - mu2) / b1) + (mu1 - mu2)) / b2,
                "mu1<mu2": (b1 * exp(-(mu2 - mu1) / b1) + (mu2 - mu1)) / b2}
    steps.append(Step("60", r"\int \frac{|x-\mu_2|}{2b_1b_2}e^{-|x-\mu_1|/b_1}dx = \begin{cases}"
                      + sympy.latex(cases["mu1>=mu2"]) + r", & \mu_1 \ge \mu_2 \\ "
                      + sympy.latex(cases["mu1<mu2"]) + r", & \mu_1 < \mu_2 \end{cases}",
                      sympy.Tuple(*cases.values()), all(is_zero(cases[c] - paper_60[c]) for c in cases),
                      "sum of the three integrals of each case, simplified",
                      because="Integration by parts, done by SymPy: each case sums to one short expression."))
    # eq. 61: both cases are one expression in |μ₁ − μ₂|; check it on each side (μ₁ = μ₂ ± d, d > 0, and d = 0)
    cross = (b1 * exp(-Abs(mu1 - mu2) / b1) + Abs(mu1 - mu2)) / b2 + log(2 * b2)
    joined = [cases["mu1>=mu2"].subs(mu1, mu2 + d) - (cross - log(2 * b2)).subs(mu1, mu2 + d),
              cases["mu1>=mu2"].subs(mu1, mu2) - (cross - log(2 * b2)).subs(mu1, mu2),
              cases["mu1<mu2"].subs(mu1, mu2 - d) - (cross - log(2 * b2)).subs(mu1, mu2 - d)]
    steps.append(Step("61", r"-\int p \log q\,dx = " + sympy.latex(cross), sympy.Tuple(*joined),
                      all(is_zero(j) for j in joined), "the two cases of eq. 60 are one function of |μ₁ − μ₂|",
                      because="Both cases depend on the means only through their distance, so one formula in "
                              "$|\\mu_1 - \\mu_2|$ covers them; add back $\\log 2b_2$."))
    # eq. 62: the entropy, integrated on each side of μ₁
    entropy = sum(sympy.integrate(sympy.expand_log(-(p * log(p)).subs(Abs(x - mu1), s * (x - mu1)), force=True),
                                  lim, conds="none")
                  for s, lim in ((-1, (x, -sympy.oo, mu1)), (1, (x, mu1, sympy.oo))))
    entropy = sympy.simplify(entropy)
    steps.append(Step("62", r"-\int p \log p\,dx = " + sympy.latex(entropy), entropy,
                      is_zero(entropy - 1 - log(2 * b1)), "−p log p integrated on each side of μ₁",
                      because="The entropy of $p$ depends only on its own scale $b_1$."))
    kl = sympy.expand_log(cross - entropy, force=True)
    kl = sympy.collect(kl, 1 / b2)
    steps.append(Step("63", r"D(p\|q) = " + sympy.latex(kl_divergence_expr()), kl,
                      is_zero(kl - kl_divergence_expr()), "eq. 54: cross entropy (61) minus entropy (62)",
                      because="Eq. 54: the KL divergence is the cross entropy minus the entropy."))
    return tuple(steps), kl


@functools.lru_cache(maxsize=None)
def derive_loss() -> tuple[tuple[Step, ...], sympy.Expr]:
    """Eq. 18 and the loss eq. 19 from the derived KL; returns (steps, D) with D in ``x``, ``alpha``, ``beta``."""
    _, kl = derive_kl()
    y, f = sympy.symbols("y_i F", real=True)
    eq18 = kl.subs({mu1: y, mu2: f})
    steps = [Step("18", r"D\big(p(y^*|y)\,\|\,q(y^*|x,\theta)\big) = " + sympy.latex(eq18), eq18,
                  is_zero(eq18 - kl_divergence_expr(y, b1, f, b2)), "eq. 63 with μ₁ = y (label), μ₂ = F(x) (prediction)",
                  because="Centre $p$ on the label and $q$ on the prediction.")]
    # eq. 19: keep the part that depends on the residual r = y − F, then subtract its value at r = 0
    r = sympy.Symbol("x", real=True)
    alpha, beta = sympy.symbols("alpha beta", positive=True)
    constant, varying = sympy.expand(eq18).as_independent(y, f, as_Add=True)
    varying = sympy.simplify(varying.subs(y, f + r))
    loss = sympy.simplify(varying - varying.subs(r, 0)).subs({b1: alpha, b2: beta})
    steps.append(Step("19", r"D_{\alpha,\beta}(x) = " + sympy.latex(laplace_kl_loss_expr(r, alpha, beta)),
                      sympy.Tuple(constant, loss), is_zero(loss - laplace_kl_loss_expr(r, alpha, beta)),
                      f"drop the constant {constant}, shift the minimum (at x = 0) to 0, b₁ → α, b₂ → β",
                      because="Only the part that moves with the residual matters for training; shifting it so "
                              "the minimum is 0 gives the proposed loss."))
    equal = kl.subs({mu1: r, mu2: 0, b1: alpha, b2: alpha}) - laplace_kl_loss_expr(r, alpha, alpha)
    steps.append(Step("19", r"D_{\alpha,\alpha}(x) = D\big(\mathrm{Laplace}(x,\alpha)\,\|\,\mathrm{Laplace}(0,\alpha)\big)",
                      equal, is_zero(equal), "with equal scales the dropped constants are 0",
                      because="With equal scales nothing was dropped: the loss is the KL divergence itself."))
    return tuple(steps), loss
