"""Training a run: its configuration (``run_config``) and command-line flags and presets
(``run_flags``), the run folder (``runs``), its data (``run_data``), callbacks, checkpoints,
TensorBoard summaries, tf.distribute strategies, the final PointNet phase and the SavedModel
export (``export``, ``export_versions``).

Imports the foundation, models, data and scoring; never evaluation or probes.
"""
