"""The studies: commands that measure across checkpoints and write ``data/results/<study>.json`` without shipping a
checkpoint (``python -m crossflow_mini reproduce NAME``). Each study is a module with a ``run(profile)``; its
settings are in :mod:`~crossflow_mini.studies.configs`; :mod:`~crossflow_mini.studies.catalog` lists them."""
