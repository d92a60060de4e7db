"""SymPy derivations and proofs of the paper: Appendix A (:mod:`.kl`), Sections 4.2–4.3 (:mod:`.series`),
Appendix B (:mod:`.bounds`) and Section 5 (:mod:`.detector`). Each step is a :class:`.steps.Step`.
"""
from labkit.symbolic.detector import FORMS, uncertainty_scale_exprs, uncertainty_scales
from labkit.symbolic.steps import Step, StepFailed, require

__all__ = ["FORMS", "uncertainty_scale_exprs", "uncertainty_scales", "Step", "StepFailed", "require"]
