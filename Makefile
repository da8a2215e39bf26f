# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv and installs
# the project on first use; the stamp file makes later runs start at once.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench server-check clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/eegattn demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

# Submissions of every model family, head and attention mechanism, validated under the
# challenge server's Python 3.10 + torch 2.2.2 in a separate, git-ignored .venv-server (built
# on first use from the registry; pip's cache makes a rebuild fast). See tools/server_check.py.
server-check: $(STAMP)
	$(BIN)/python tools/server_check.py --venv .venv-server

bench: $(STAMP)
	$(BIN)/python bench/attention.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/data.py

clean-venv:
	rm -rf $(VENV)
