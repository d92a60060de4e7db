"""SymPy derivations and proofs of the paper, each step a :class:`~labkit.symbolic.steps.Step`.

- :mod:`.kl` — Appendix A: the Laplace KL (eqs. 54–63), eq. 18 and the loss eq. 19;
- :mod:`.series` — Sections 4.2–4.3: eqs. 20–26 and the scaling laws eqs. 28–31;
- :mod:`.bounds` — Appendix B: Propositions 1–3 (eqs. 64–92) and a numeric check of eq. 27;
- :mod:`.detector` — Section 5: residual rewrites and the (λ, α, σ) → (label, prediction) scale mapping.
"""
from labkit.symbolic.bounds import all_steps as bounds_steps
from labkit.symbolic.bounds import check_bounds_numerically, numeric_step
from labkit.symbolic.detector import FORMS, mapping_steps, residual_steps, uncertainty_scale_exprs, uncertainty_scales
from labkit.symbolic.kl import derive_kl, derive_loss
from labkit.symbolic.series import derive_behaviour, derive_properties
from labkit.symbolic.steps import Step, StepFailed, require

__all__ = ["FORMS", "uncertainty_scale_exprs", "uncertainty_scales", "residual_steps", "mapping_steps",
           "derive_kl", "derive_loss", "derive_behaviour", "derive_properties", "bounds_steps",
           "check_bounds_numerically", "numeric_step", "Step", "StepFailed", "require"]
