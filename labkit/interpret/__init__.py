"""Interpreting Faster R-CNN's box loss (Section 5, Tables 1–2): what (λ, α, σ) assume about label and prediction
noise, and the inverse — from the noise you believe in to settings for the lab and for detection frameworks.

- :mod:`.settings` — :class:`StageSettings`, the one stage-settings type, and :func:`exact`, the one number rule;
- :mod:`.presets` — Table 1 as data;
- :mod:`.mapping` — the closed forms of eqs. 36, 42, 52–53 (forward and inverse), plain exact code;
- :mod:`.tables` — Tables 1 and 2 regenerated;
- :mod:`.exports` — the settings as torchvision / detectron2 / mmdetection / py-faster-rcnn knobs (``suggest``);
- :mod:`.learned` — the fixed settings whose prediction scale equals a learned-uncertainty detector's (issue 17);
- :mod:`.calculator` — the noise-to-settings widget (ipywidgets; import it directly);
- :mod:`.cli` — ``python -m labkit interpret``.

Importing this package loads neither SymPy nor any widget library.
"""
from labkit.interpret.learned import ImpliedStage, implied_settings, implied_stage
from labkit.interpret.mapping import (SCALE_LAWS, Suggestion, huber_coefficient, stage_scales, suggest,
                                      suggest_stage, uncertainty_scales)
from labkit.interpret.presets import PRESET_NAMES, PRESETS, Preset, get_preset
from labkit.interpret.settings import (COORDINATES, FORMS, IMPLEMENTATION, LAPLACE_UPPER, PAPER, STAGES,
                                       StageSettings, exact)
from labkit.interpret.tables import TABLE2_ROWS, Table, table1, table2

__all__ = [
    "FORMS", "IMPLEMENTATION", "PAPER", "LAPLACE_UPPER", "STAGES", "COORDINATES", "StageSettings", "exact",
    "PRESET_NAMES", "Preset", "PRESETS", "get_preset",
    "SCALE_LAWS", "uncertainty_scales", "stage_scales", "huber_coefficient", "Suggestion", "suggest", "suggest_stage",
    "Table", "TABLE2_ROWS", "table1", "table2", "ImpliedStage", "implied_stage", "implied_settings",
]
