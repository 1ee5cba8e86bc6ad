"""The tasks: one package (or module) per capability, each holding its recipes, data, training, evaluation and
pipeline. The registry (:mod:`crossflow_mini.registry`) names every checkpoint; the studies
(:mod:`crossflow_mini.studies`) measure across them."""
