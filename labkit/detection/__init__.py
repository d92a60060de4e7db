"""The detection engine: torchvision's Faster R-CNN with the paper's per-stage box losses (Sections 5–6).

Modules, each one job: :mod:`~labkit.detection.data` (datasets and the synthetic generator),
:mod:`~labkit.detection.losses` (box-loss configuration, loss forms, box coders),
:mod:`~labkit.detection.model` (model builders), :mod:`~labkit.detection.train` (training loop),
:mod:`~labkit.detection.evaluate` (COCO evaluation). Import them directly; nothing heavy is loaded here.
"""
