"""Table 1 as data: the three experiments' box-loss settings for both stages of Faster R-CNN."""
from __future__ import annotations

from dataclasses import dataclass

from labkit.interpret.settings import FORMS, IMPLEMENTATION, PAPER, STAGES, StageSettings, check_choice

__all__ = ["PRESET_NAMES", "Preset", "PRESETS", "get_preset"]

PRESET_NAMES = ("published", "implemented", "proposed")


@dataclass(frozen=True)
class Preset:
    """One experiment of Table 1: the settings of both stages, and ``form``, how its loss is read (the published
    column is the publication's λ·H_α, eq. 36; the others the released code's (λ/α)·H_α, eq. 42)."""

    name: str
    rpn: StageSettings
    detection: StageSettings
    form: str = IMPLEMENTATION

    def __post_init__(self) -> None:
        check_choice("form", self.form, FORMS)

    def stage(self, name: str) -> StageSettings:
        return getattr(self, check_choice("stage", name, STAGES))

    @property
    def stages(self) -> dict[str, StageSettings]:
        return {s: self.stage(s) for s in STAGES}


#: Table 1 of the paper
PRESETS: dict[str, Preset] = {
    "published": Preset("published",
                        rpn=StageSettings(10, 1, 1, 1, 1, 1),
                        detection=StageSettings(10, 1, 1, 1, 1, 1), form=PAPER),
    "implemented": Preset("implemented",
                          rpn=StageSettings(1, "1/9", 1, 1, 1, 1),
                          detection=StageSettings(1, 1, "1/10", "1/10", "1/5", "1/5")),
    "proposed": Preset("proposed",
                       rpn=StageSettings("1/4", 1, "1/20", "1/20", "1/10", "1/10"),
                       detection=StageSettings("1/2", 1, "1/20", "1/20", "1/10", "1/10")),
}


def get_preset(name: str) -> Preset:
    """The Table 1 preset called ``name``; unknown names raise listing the valid ones."""
    return PRESETS[check_choice("preset", name, PRESET_NAMES)]
