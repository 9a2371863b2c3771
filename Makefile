# Two commands, both with set-up included:
#   make book   build the rendered book, executing every chapter (profile: cpu, or $MMCL_PROFILE);
#               a second run reuses the executed notebooks unless the package, the profile, an
#               MMCL_* setting, torch, the device or a notebook's code changed (book_support/rebuild.py)
#   make test   lint, editions, unit tests, every notebook at the smoke profile (profiled: seconds per
#               chapter and cell, split into training, probing, data, other), strict smoke book build
# and to see where the time goes:
#   make profile-book   execute the chapters and print that split (smoke by default;
#                       MMCL_PROFILE=cpu make profile-book for the real build)
# and for the Colab path:
#   make editions     write the Colab and student editions to _build/editions/{colab,student}/book/
#   make colab-check  install the Colab editions' own install target (this checkout, via
#                     MMCL_INSTALL_URL) into a fresh venv in .colab-check/ and run them at smoke
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Exact pin only where we install: this wheel lies on these machines' disk (CPU build).
TORCH  := torch==2.13.0
# Where pip looks for torch: empty = PyPI (whose Linux wheel is a CUDA 13 build; the CPU wheel on
# these machines). The GPU workflow passes the CUDA build matching its runner's driver, e.g.
# make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126
TORCH_INDEX ?=
# Per-cell time limit of `make book`, in seconds; empty = _config.yml's execute.timeout. `make book`
# builds from a copy of _config.yml (.book-config.yml) with execution in `cache` mode and, when set,
# this limit and the launch ref below changed.
BOOK_TIMEOUT ?=
# The ref of the published editions that the Colab buttons open (the GPU workflow passes the commit
# it pushed them in) and their folder there; set, the copy's repository.branch/path_to_book change.
BOOK_LAUNCH_REF ?=
BOOK_LAUNCH_PATH ?= colab
# Extra flags of `make editions`, e.g. --require-clean (refuse uncommitted changes).
EDITIONS_FLAGS ?=
BOOK_PROFILE ?= $(or $(MMCL_PROFILE),cpu)
# Progress bars help a reader at a keyboard, not a rendered page or a test log.
export MMCL_PROGRESS ?= 0

# Profile of `make profile-book`: smoke unless MMCL_PROFILE (or this variable) says otherwise. Extra
# flags, e.g. PROFILE_BOOK_FLAGS='--only 05_image_text --json profile.json'.
PROFILE_BOOK_PROFILE ?= $(or $(MMCL_PROFILE),smoke)
PROFILE_BOOK_FLAGS ?=

.PHONY: book test setup lint unit notebooks book-smoke gpu-dry bench clean editions colab-check scenes-heldout \
	profile-book numerical-heldout

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/python -m mmcl_helpers.book_support.editions book-config --out .book-config.yml \
	  --execute-notebooks cache $(if $(BOOK_TIMEOUT),--timeout $(BOOK_TIMEOUT)) \
	  $(if $(BOOK_LAUNCH_REF),--launch-ref $(BOOK_LAUNCH_REF) --launch-path $(BOOK_LAUNCH_PATH))
	$(BIN)/python -m mmcl_helpers.book_support.rebuild --profile $(BOOK_PROFILE) --config .book-config.yml
	@echo "Book built at profile $(BOOK_PROFILE): $(CURDIR)/_build/html/index.html"

test: lint editions unit notebooks book-smoke

# No execution: MyST turned into Jupyter Markdown, solutions folded (colab) or removed (student).
# tests/test_editions.py checks the result; `make colab-check` runs it.
editions: $(STAMP)
	$(BIN)/python -m mmcl_helpers.book_support.editions build $(EDITIONS_FLAGS)

# A fresh venv (not .venv), the editions' own install line with the repository address swapped for
# this checkout (git+file://localhost$(CURDIR)@<HEAD>, or $$MMCL_INSTALL_URL), every Colab edition executed at
# smoke from a folder outside the checkout. Needs a committed tree: it installs HEAD.
colab-check: $(STAMP)
	$(BIN)/python -m mmcl_helpers.book_support.editions build --require-clean
	$(BIN)/python -m mmcl_helpers.book_support.editions colab-check --torch '$(TORCH)' $(if $(TORCH_INDEX),--torch-index $(TORCH_INDEX))

lint: $(STAMP)
	$(BIN)/ruff check mmcl_helpers tests benchmarks

unit: $(STAMP)
	MMCL_PROFILE=smoke $(BIN)/pytest tests

# Every notebook at smoke, executed by the book profiler: a failing cell is reported (notebook, cell,
# source, traceback) and fails the target as nbmake did, and the log shows where the time went.
notebooks: $(STAMP)
	$(BIN)/python -m mmcl_helpers.book_support.profile_book --profile smoke --timeout 900

# Execute the chapters (in _toc.yml order) and print seconds per chapter and per cell, split into
# training, probing, data and other (mmcl_helpers/book_support/profile_book.py).
profile-book: $(STAMP)
	$(BIN)/python -m mmcl_helpers.book_support.profile_book --profile $(PROFILE_BOOK_PROFILE) \
	  --timeout 3600 $(PROFILE_BOOK_FLAGS)

# A separate output folder, so the smoke build never overwrites the real book in _build/.
book-smoke: $(STAMP)
	MMCL_PROFILE=smoke $(BIN)/jupyter-book build --all -W -n --keep-going --path-output .smoke .
	@echo "Smoke book: $(CURDIR)/.smoke/_build/html/index.html"

# A testing aid, not a build: every notebook with the gpu profile's structure (every column,
# 3 seeds, dependent stride 1) but its steps and sample counts capped (MMCL_DRY_RUN=1, see
# mmcl_helpers/core/dry_run.py), on whatever device is there, in minutes. Chapter 5's MPI3D branch
# runs on a small synthetic file with the real layout, written first. Fresh cache every time.
# One thread per kernel: at these capped sizes the per-op overhead dominates, and on a shared
# or oversubscribed machine two spinning OpenMP threads make a tiny op 1000x slower.
DRY_DIR := $(CURDIR)/.dry
gpu-dry: $(STAMP)
	rm -rf $(DRY_DIR) && mkdir -p $(DRY_DIR)
	$(BIN)/python -m mmcl_helpers.datasets.mpi3d_synthetic $(DRY_DIR)/mpi3d.npz
	OMP_NUM_THREADS=1 MMCL_PROFILE=gpu MMCL_DRY_RUN=1 MMCL_MPI3D_PATH=$(DRY_DIR)/mpi3d.npz MMCL_CACHE_DIR=$(DRY_DIR)/cache \
	  $(BIN)/pytest --nbmake --nbmake-timeout=600 --durations=0 book/

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ensemble_training.py
	$(BIN)/python benchmarks/bench_info_nce.py
	$(BIN)/python benchmarks/bench_paper_ensemble.py
	$(BIN)/python benchmarks/bench_step_syncs.py

clean:
	rm -rf _build .smoke .dry .pytest_cache .book-config.yml .colab-check

# Chapter 5's recipe on 12 caption settings nobody tuned it on (mmcl_helpers/image_text/heldout.py):
# per setting and seed, the worst learned, dropped and image-specific scores against the bars.
# About 1-1.5 min per setting and seed at cpu on 2 cores (24 models: ~30 min). At cpu it also
# records the table (mmcl_helpers/image_text/recorded/heldout_cpu.json) that chapter 5 quotes and
# tests/test_heldout.py checks against today's recipe: rerun it whenever the cpu recipe changes.
scenes-heldout: $(STAMP)
	$(BIN)/python -m mmcl_helpers.image_text.heldout --profile $(or $(MMCL_PROFILE),cpu) --seeds 0 1 \
		$(if $(filter cpu,$(or $(MMCL_PROFILE),cpu)),--record)

# Chapters 2 and 3's checks (their bars, Table 4 against the paper, the dependent case's weakest
# unbiased factor) on seeds the book never reports (mmcl_helpers/numerical/heldout.py). At cpu each
# seed took 35 minutes in a one-thread process beside the other seed's. At cpu it also records the tables chapter 2
# quotes (mmcl_helpers/numerical/recorded/heldout_cpu*.json: today's recipe, and the same with fewer steps,
# heldout.FEWER_STEPS, about 10 minutes per seed): rerun it whenever the cpu recipe changes.
# A candidate recipe:
#   .venv/bin/python -m mmcl_helpers.numerical.heldout --set steps=8000 --set lr=0.01 [--tuning]
numerical-heldout: $(STAMP)
	$(BIN)/python -m mmcl_helpers.numerical.heldout --profile $(or $(MMCL_PROFILE),cpu) \
		$(if $(filter cpu,$(or $(MMCL_PROFILE),cpu)),--record)
	$(if $(filter cpu,$(or $(MMCL_PROFILE),cpu)),$(BIN)/python -m mmcl_helpers.numerical.heldout --fewer-steps --record)
