# One task runner for developers and CI. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
KB     := $(BIN)/kb
SHARED ?= ../shared
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint bench clean-index

# torch is installed first, pinned, so nothing pulls a multi-GB GPU build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Ingest the bundled reading list (and its PDFs when present), then ask it two questions.
demo: $(STAMP)
	@if ! ls paper/*.pdf >/dev/null 2>&1 && [ -d $(SHARED)/corpus/userlib/paper ]; then \
		echo "linking the sample PDFs from $(SHARED)/corpus/userlib/paper into paper/"; \
		for f in $(SHARED)/corpus/userlib/paper/*.pdf; do ln -sf "$$(cd "$$(dirname "$$f")" && pwd)/$$(basename "$$f")" paper/; done; \
	fi
	$(KB) ingest paper/ || [ $$? -eq 1 ]
	$(KB) search "lip sync loss" --limit 3
	$(KB) related StyleGAN --limit 5

test: $(STAMP)
	$(BIN)/ruff check kb tests bench
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check kb tests bench

# Measurements, not tests: ingest both sample corpora into build/bench/index, then time and score.
BENCH_DIR ?= build/bench
bench: $(STAMP)
	$(BIN)/python bench/extract_bench.py
	$(BIN)/python bench/ingest_bench.py --keep $(BENCH_DIR)
	$(BIN)/python bench/search_bench.py --index $(BENCH_DIR)/index --speed --tools
	$(BIN)/python bench/related_bench.py --index $(BENCH_DIR)/index --speed StyleGAN SyncNet Wav2Lip

clean-index:
	rm -rf index/* index/.[!.]*; touch index/.gitkeep
