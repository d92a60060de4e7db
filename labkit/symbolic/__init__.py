"""SymPy derivations and proofs of the paper: derivation steps (:class:`~labkit.symbolic.steps.Step`) and proofs as
chains of claims (:class:`~labkit.symbolic.claims.Claim`: symbolic, numeric or a named lemma's argument).

- :mod:`.likelihood` — Section 4: the noise model (eqs. 12–13, 16–17), KL = cross entropy − entropy (eqs. 14–15)
  and the Dirac-delta label limit (maximum likelihood);
- :mod:`.kl` — Appendix A: the Laplace KL (eqs. 54–63), eq. 18 and the loss eq. 19;
- :mod:`.series` — Sections 4.2–4.3: eqs. 20–26 and the scaling laws eqs. 28–31;
- :mod:`.facts`, :mod:`.lemmas`, :mod:`.claims` — what a proof claims, the lemmas it cites, the chain and its display;
- :mod:`.bounds` — Appendix B: Propositions 1–2 (eqs. 64–80) and a numeric check of eq. 27;
- :mod:`.tightness` — Appendix B: Proposition 3 (eqs. 81–92);
- :mod:`.detector` — Section 5: residual rewrites and the (λ, α, σ) → (label, prediction) scale mapping;
- :mod:`.mestimation` — the asymptotic variance of Huber and D location M-estimates under Laplace and Gaussian noise
  (checked equal to :mod:`labkit.theory`'s closed forms);
- :mod:`.exercises` — feedback for the notebooks' exercises.
"""
from labkit.symbolic.bounds import check_bounds_numerically, numeric_claim, proposition_1, proposition_2
from labkit.symbolic.claims import Claim, LemmaSheet, Proof
from labkit.symbolic.detector import FORMS, mapping_steps, residual_steps, uncertainty_scale_exprs, uncertainty_scales
from labkit.symbolic.kl import derive_kl, derive_loss
from labkit.symbolic.mestimation import derive_variances, variance_exprs
from labkit.symbolic.series import derive_behaviour, derive_properties
from labkit.symbolic.steps import Step, StepFailed, require
from labkit.symbolic.tightness import proofs, proposition_3

__all__ = ["FORMS", "uncertainty_scale_exprs", "uncertainty_scales", "residual_steps", "mapping_steps",
           "derive_kl", "derive_loss", "derive_behaviour", "derive_properties", "proposition_1", "proposition_2",
           "proposition_3", "proofs", "check_bounds_numerically", "numeric_claim", "Claim", "Proof", "LemmaSheet",
           "Step", "StepFailed", "require", "derive_variances", "variance_exprs"]
