# Two commands, both with set-up included:
#   make book   build the rendered book, executing every chapter (profile: cpu, or $MMCL_PROFILE)
#   make test   lint, unit tests, every notebook at the smoke profile, strict smoke book build
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Exact pin only where we install: this wheel lies on these machines' disk (CPU build).
TORCH  := torch==2.13.0
BOOK_PROFILE ?= $(or $(MMCL_PROFILE),cpu)
# Progress bars help a reader at a keyboard, not a rendered page or a test log.
export MMCL_PROGRESS ?= 0

.PHONY: book test setup lint unit notebooks book-smoke bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: $(STAMP)
	MMCL_PROFILE=$(BOOK_PROFILE) $(BIN)/jupyter-book build --all -W -n --keep-going .
	@echo "Book built at profile $(BOOK_PROFILE): $(CURDIR)/_build/html/index.html"

test: lint unit notebooks book-smoke

lint: $(STAMP)
	$(BIN)/ruff check mmcl_helpers tests benchmarks

unit: $(STAMP)
	MMCL_PROFILE=smoke $(BIN)/pytest tests

notebooks: $(STAMP)
	MMCL_PROFILE=smoke $(BIN)/pytest --nbmake --nbmake-timeout=900 book/

# A separate output folder, so the smoke build never overwrites the real book in _build/.
book-smoke: $(STAMP)
	MMCL_PROFILE=smoke $(BIN)/jupyter-book build --all -W -n --keep-going --path-output .smoke .
	@echo "Smoke book: $(CURDIR)/.smoke/_build/html/index.html"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ensemble_training.py
	$(BIN)/python benchmarks/bench_info_nce.py
	$(BIN)/python benchmarks/bench_paper_ensemble.py

clean:
	rm -rf _build .smoke .pytest_cache
