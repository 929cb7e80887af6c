"""Scoring keypoints, in numpy: matching keypoints to ground-truth objects (``matching``,
``detection_score``), the baselines a keypoint result must beat (``baselines``), stability over
consecutive frames, the linear probe (``probe``), model-side diagnostics that need no objects,
a whole evaluation set's metrics (``metrics``) and the per-epoch quality check during training
(``quality``).

Imports the foundation, the models (for the model's own loss) and nothing above.
"""
