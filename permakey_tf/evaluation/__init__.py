"""Evaluating trained runs as a library: a run's model as a predictor and a split as numpy
arrays (``predictions``), the paper's figures (``figures``), the report files (``report``) and
the tables over seeds (``seed_summary``). evaluate.py is a command line over it.

Imports everything below it (foundation, models, data, scoring, training's run folder); never
the probes.
"""
