"""Section 5 in SymPy: what Faster R-CNN's box loss assumes about label and prediction noise (eqs. 32–53).

The residual the network sees is rewritten in image units (eqs. 33–35, 39–41, 45–51); it is the difference of the
decoded prediction and the ground truth divided by a scale s (σ·w_a, or σ for the log width of eq. 47). The loss on it
is c·H_α(r) with c = λ/α (the implementation, eq. 37) or c = λ (the paper). With H_α ≈ D_{α,1/α} and the scaling laws
eqs. 28–31, c·D_{α,1/α}((pred − truth)/s) is again a D_{a,b}(pred − truth); :func:`labkit.symbolic.kl.loss_parameters`
solves for (a, b) = (label scale, prediction scale), which gives eqs. 36, 42, 52–53.

Symbols: ``lam`` = λ (loss weight), ``alpha`` = α (Huber transition), ``sigma`` = σ (target scaling, eq. 38),
``mu`` = μ (target shift), ``w_a`` = anchor size, ``t_x``/``t_w`` = network outputs, ``x_a`` = anchor centre,
``x_star``/``w_star`` = ground truth.
"""
from __future__ import annotations

import functools
import numbers
from fractions import Fraction

import sympy
from sympy import exp, log

from labkit.symbolic.kl import laplace_kl_loss_expr, loss_parameters
from labkit.symbolic.steps import Step, is_zero, require, tex

__all__ = [
    "FORMS",
    "lam",
    "alpha",
    "sigma",
    "residual_steps",
    "mapping_steps",
    "uncertainty_scale_exprs",
    "uncertainty_scales",
]

#: the two readings of the Faster R-CNN box loss: the released code (λ/α)·H_α on σ-scaled targets (eqs. 37–42) and
#: the publication's λ·H_α (eq. 36, where σ = 1)
FORMS = ("implementation", "paper")

lam, alpha, sigma, w_a = sympy.symbols("lam alpha sigma w_a", positive=True)
mu, t_x, t_w, x_a, x_star = sympy.symbols("mu t_x t_w x_a x_star", real=True)
w_star = sympy.Symbol("w_star", positive=True)
x_tilde = sympy.Symbol("x_tilde", real=True)
w_tilde = sympy.Symbol("w_tilde", positive=True)


def _loss_weight(form: str) -> sympy.Expr:
    """c in c·H_α(r): λ/α for the implementation's (1/α)H_α variant (eq. 37), λ for the paper."""
    return lam / alpha if form == "implementation" else lam


def _scale_of(residual: sympy.Expr, difference: sympy.Expr) -> sympy.Expr:
    """s such that residual = difference / s, checked to be free of the quantities in ``difference``."""
    s = sympy.simplify(difference / residual)
    if s.free_symbols & (difference.free_symbols - {w_a, sigma, mu}):
        raise ValueError(f"residual {residual} is not a multiple of {difference}")
    return s


@functools.lru_cache(maxsize=None)
def _residuals() -> dict[str, tuple[sympy.Expr, sympy.Expr, tuple[Step, ...]]]:
    """Each residual of Section 5 as (difference, scale s, steps): residual = difference / s."""
    out = {}
    # centre, eqs. 32 and 38–41 (eqs. 33–35 are μ = 0, σ = 1)
    target = (x_star - x_a) / w_a  # eq. 32
    scaled = (target - mu) / sigma  # eq. 38
    residual = t_x - scaled  # left side of eq. 39
    decoded = (t_x * sigma + mu) * w_a + x_a  # x̃, the network's centre in image units
    in_x_tilde = sympy.simplify(residual.subs(t_x, sympy.solve(sympy.Eq(x_tilde, decoded), t_x)[0]))
    s = _scale_of(in_x_tilde, x_tilde - x_star)
    steps = (
        Step("39–41", r"t_x - \tilde t_x^* = " + tex(in_x_tilde),
             in_x_tilde, is_zero(in_x_tilde - (x_tilde - x_star) / s),
             "substitute t_x = ((x̃ − x_a)/w_a − μ)/σ, solved from x̃ = (t_xσ + μ)w_a + x_a",
             because="The network's normalised offset, decoded to image units, is the predicted centre "
                     "$\\tilde x$: the residual is a difference of centres over $\\sigma w_a$."),
        Step("33–35", r"t_x - t_x^* = " + tex(in_x_tilde.subs({mu: 0, sigma: 1})),
             in_x_tilde.subs({mu: 0, sigma: 1}), is_zero(in_x_tilde.subs({mu: 0, sigma: 1}) - (x_tilde - x_star) / w_a),
             "the same with μ = 0, σ = 1 (no target normalisation)",
             because="The paper's version, without target normalisation."),
    )
    out["centre"] = (x_tilde - x_star, s, steps)

    # width in log space, eqs. 43–47
    target_w = log(w_star / w_a)  # eq. 43
    residual_w = t_w - (target_w - mu) / sigma  # eq. 45
    decoded_w = exp(t_w * sigma + mu) * w_a  # w̃
    t_of_w = sympy.solve(sympy.Eq(w_tilde, decoded_w), t_w)[0]
    in_log = sympy.expand_log(sympy.simplify(residual_w.subs(t_w, t_of_w)), force=True)
    s_log = _scale_of(in_log, log(w_tilde) - log(w_star))
    log_steps = (
        Step("45–47", r"t_w - \tilde t_w^* = " + tex(in_log), in_log,
             is_zero(in_log - (log(w_tilde) - log(w_star)) / s_log),
             "substitute t_w = (log(w̃/w_a) − μ)/σ, solved from w̃ = exp(t_wσ + μ)w_a",
             because="For the size the residual is a difference of log widths."),
    )
    out["log_width"] = (log(w_tilde) - log(w_star), s_log, log_steps)

    # width, linearised: eq. 48 is log's first-order Taylor polynomial at w*/w_a = 1, then eqs. 49–51
    ratio = sympy.Symbol("rho", positive=True)
    first_order = sympy.series(log(ratio), ratio, 1, 2).removeO()
    residual_lin = t_w - (first_order.subs(ratio, w_star / w_a) - mu) / sigma  # eq. 49
    decoded_lin = sympy.series(exp(sympy.Symbol("z")), sympy.Symbol("z"), 0, 2).removeO().subs(
        sympy.Symbol("z"), t_w * sigma + mu) * w_a  # w̃ ≈ (t_wσ + μ + 1)w_a, exp's first-order polynomial
    t_of_lin = sympy.solve(sympy.Eq(w_tilde, decoded_lin), t_w)[0]
    in_w = sympy.simplify(residual_lin.subs(t_w, t_of_lin))
    s_lin = _scale_of(in_w, w_tilde - w_star)
    lin_steps = (
        Step("48", r"\log\frac{w^*}{w_a} \approx " + tex(first_order.subs(ratio, w_star / w_a)), first_order,
             is_zero(first_order - (ratio - 1)), "first-order Taylor polynomial of log ρ at ρ = 1",
             because="Matched boxes have $w^*/w_a$ near 1, where $\\log$ is nearly a line."),
        Step("49–51", r"t_w - \tilde t_w^* \approx " + tex(in_w), in_w, is_zero(in_w - (w_tilde - w_star) / s_lin),
             "with w̃ ≈ (t_wσ + μ + 1)w_a, the first-order polynomial of exp",
             because="Linearised, the size residual is again a difference over $\\sigma w_a$."),
    )
    out["width"] = (w_tilde - w_star, s_lin, lin_steps)
    return out


def residual_steps() -> tuple[Step, ...]:
    """The residual rewrites eqs. 33–35, 39–41, 45–51, each a :class:`Step`."""
    res = _residuals()
    return res["centre"][2] + res["log_width"][2] + res["width"][2]


@functools.lru_cache(maxsize=None)
def _mapping(form: str, which: str) -> tuple[sympy.Expr, sympy.Expr]:
    """(label scale, prediction scale) for one residual: solve c·D_{α,1/α}(d/s) ≡ D_{a,b}(d) for (a, b)."""
    difference, s, _ = _residuals()[which]
    d = sympy.Symbol("d", positive=True)  # the difference pred − truth (D is even, so d ≥ 0 suffices)
    loss = _loss_weight(form) * laplace_kl_loss_expr(d / s, alpha, 1 / alpha)  # H_α ≈ D_{α,1/α}, eq. 25
    return loss_parameters(loss, d)


def mapping_steps() -> tuple[Step, ...]:
    """The mappings eqs. 36, 42, 52, 53 as :class:`Step` records (statement: the D_{label, prediction} found)."""
    out = []
    cases = (("36", "paper", "centre", {sigma: 1}, r"\lambda H_1(t_x - t_x^*)", {alpha: 1}),
             ("42", "implementation", "centre", {}, r"\frac{\lambda}{\alpha} H_\alpha(t_x - \tilde t_x^*)", {}),
             ("52", "implementation", "log_width", {}, r"\frac{\lambda}{\alpha} H_\alpha(t_w - \tilde t_w^*)", {}),
             ("53", "implementation", "width", {}, r"\frac{\lambda}{\alpha} H_\alpha(t_w - \tilde t_w^*)", {}))
    for eq, form, which, fix, lhs, alpha_fix in cases:
        label, pred = (e.subs(fix).subs(alpha_fix) for e in _mapping(form, which))
        difference = _residuals()[which][0]
        d = sympy.Symbol("d", positive=True)
        s = _residuals()[which][1].subs(fix)
        c = _loss_weight(form).subs(alpha_fix)
        a = alpha.subs(alpha_fix)
        proof = c * laplace_kl_loss_expr(d / s, a, 1 / a) - laplace_kl_loss_expr(d, label, pred)
        out.append(Step(eq, lhs + r" \approx D_{" + tex(label) + "," + tex(pred) + "}(" + tex(difference) + ")",
                        proof, is_zero(proof), "solved for D's parameters after H_α ≈ D_{α,1/α}",
                        because=_WHY_MAPPING[eq] + " With $H_\\alpha \\approx D_{\\alpha,1/\\alpha}$ and the "
                                "scaling laws the loss is again a $D$; its parameters are the noise scales."))
    return tuple(out)


_WHY_MAPPING = {"36": "The published loss, $\\lambda H_1$ on un-normalised centre targets.",
                "42": "The released code: $\\frac{\\lambda}{\\alpha}H_\\alpha$ on $\\sigma$-normalised targets.",
                "52": "The same for the width, in log units.",
                "53": "Linearised (eqs. 48–51), the width's noise scales in pixels."}


@functools.lru_cache(maxsize=None)
def _derived_scales(form: str) -> tuple[sympy.Expr, sympy.Expr]:
    require(residual_steps())
    centre = tuple(e.subs(w_a, 1) for e in _mapping(form, "centre"))
    width = tuple(e.subs(w_a, 1) for e in _mapping(form, "width"))
    if any(not is_zero(c - w) for c, w in zip(centre, width)):  # eqs. 42 and 53 must agree
        raise AssertionError(f"centre and width mappings differ: {centre} vs {width}")
    return centre


def _check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got form={form!r}")


def uncertainty_scale_exprs(form: str = "implementation") -> tuple[sympy.Expr, sympy.Expr]:
    """(label_scale, prediction_scale) in units of the anchor size (w_a = 1), in the positive symbols lam, alpha,
    sigma, derived by SymPy (eqs. 36, 42, 52–53): the residual rewritten as (pred − truth)/(σw_a) (eqs. 33–35,
    39–41, 45–51), H_α ≈ D_{α,1/α}, and D's parameters solved from the scaling laws (eqs. 28–31).

    ``form``: ``"implementation"`` — (λ/α)·H_α on σ-scaled targets; ``"paper"`` — λ·H_α (σ = 1 in the paper).
    """
    _check_form(form)
    return _derived_scales(form)


@functools.lru_cache(maxsize=None)
def _scales_function(form: str):
    label, pred = uncertainty_scale_exprs(form)
    return sympy.Lambda((lam, alpha, sigma), sympy.Tuple(label, pred))


def _exact(name: str, value) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, numbers.Rational):
        raise TypeError(f"{name} must be an int or fractions.Fraction (exact), got {value!r} "
                        f"({type(value).__name__}); e.g. Fraction('0.1') instead of 0.1")
    v = Fraction(value)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {name}={value}")
    return v


def uncertainty_scales(lam, alpha, sigma, form: str = "implementation") -> tuple[Fraction, Fraction]:
    """Exact (label_scale, prediction_scale) in units of the anchor size for loss weight ``lam`` (λ), Huber
    transition ``alpha`` (α) and target scaling ``sigma`` (σ), each an int or ``Fraction`` > 0 (Table 1 → Table 2).

    E.g. the implementation's proposal network (λ, α, σ) = (1, 1/9, 1) gives (1/9, 1): label noise a ninth of the
    anchor, prediction noise the full anchor (eq. 42).
    """
    _check_form(form)
    args = sympy.Tuple(*(sympy.Rational(v.numerator, v.denominator)
                         for v in (_exact("lam", lam), _exact("alpha", alpha), _exact("sigma", sigma))))
    label, pred = _scales_function(form)(*args)
    return Fraction(int(label.p), int(label.q)), Fraction(int(pred.p), int(pred.q))
