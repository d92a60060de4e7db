"""The paper's Table 1, typed once from the paper as the tests' independent reference (never from labkit).

(λ, α, σ_x, σ_y, σ_w, σ_h) for the proposal (rpn) and detection stages of each preset.
"""
from fractions import Fraction as F

TABLE1 = {
    "published": ((10, 1, 1, 1, 1, 1), (10, 1, 1, 1, 1, 1)),
    "implemented": ((1, F(1, 9), 1, 1, 1, 1), (1, 1, F(1, 10), F(1, 10), F(1, 5), F(1, 5))),
    "proposed": ((F(1, 4), 1, F(1, 20), F(1, 20), F(1, 10), F(1, 10)),
                 (F(1, 2), 1, F(1, 20), F(1, 20), F(1, 10), F(1, 10))),
}
