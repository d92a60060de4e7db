"""The detection floor: torchvision's Faster R-CNN with the paper's per-stage box losses (Sections 5–6).

Modules, each one job, lowest first:

- :mod:`.synthetic`, :mod:`.voc`, :mod:`.data` — the synthetic shapes dataset; COCO/VOC datasets, loading, the flip;
- :mod:`.losses` — box-loss configuration (a :class:`labkit.interpret.StageSettings` + form + size target),
  loss forms, box coders;
- :mod:`.roi_align`, :mod:`.backbones`, :mod:`.uncertainty`, :mod:`.model` — the fast RoI pooler, the backbones
  and their starting weights (none, ImageNet, a local file), learned per-box scales (the paper's future work: scale
  head, losses, scales through postprocessing, variance voting), the model builders;
- :mod:`.runs`, :mod:`.config` — the device, a run directory (checkpoints, log) and its configuration;
- :mod:`.cocoeval`, :mod:`.localization`, :mod:`.calibration`, :mod:`.evaluate` — COCO evaluation, the
  localization error, and the likelihood, calibration and sharpness of learned scales;
- :mod:`.implied` — the fixed settings a learned-uncertainty run implies (via :mod:`labkit.interpret.learned`);
- :mod:`.engine` — the training loop;
- :mod:`.cli` — ``python -m labkit train``, ``evaluate``, ``data``.

Import them directly; nothing heavy is loaded here.
"""
