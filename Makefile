# The two commands of the quick start are `make run` and `make test`; everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := deployment_model/inference/requirements.txt deployment_model/train/requirements.txt
# `make run` installs the runtime and the CLI's libraries only; `make test` adds the dev tools to the same venv.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PORT ?= 3000
# aws-sam-cli and checkov pin boto3 exactly, and differently: each gets a venv apart from the runtime one.
TOOLS := .venv-tools
TOOL_STAMPS := $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed

.PHONY: run test tools bench lint format openapi diagram clean

## run: serve the API on http://127.0.0.1:3000 (models in .model-store/); another port: make run PORT=3001
run: $(RUN_STAMP)
	$(BIN)/python -m deployment_model serve --port $(PORT)

## test: lint, then every test (unit, integration, stack); builds the runtime and tools venvs first
test: $(DEV_STAMP) $(TOOL_STAMPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	REQUIRE_TOOLS=1 $(BIN)/python -m pytest

## tools: the SAM CLI, cfn-lint, hadolint and checkov, in their own venvs
tools: $(TOOL_STAMPS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## openapi: regenerate docs/openapi.json from the handlers' routes and models
openapi: $(RUN_STAMP)
	$(BIN)/python -m deployment_model openapi > docs/openapi.json

## bench: warm latency, cold start, training, image weight, local throughput; records docs/performance.md
bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run --record docs/performance.md

## diagram: redraw images/architecture.{png,svg} from images/architecture.dot (needs Graphviz: apt-get install graphviz)
diagram:
	dot -Tpng -Gdpi=110 images/architecture.dot -o images/architecture.png
	dot -Tsvg images/architecture.dot -o images/architecture.svg

# The runtime venv: the functions' exact pins, the package itself and the CLI's libraries (the [cli] extra).
$(RUN_STAMP): pyproject.toml $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r deployment_model/train/requirements.txt -e '.[cli]'
	touch $@

# The same venv plus the dev tools (pytest, moto, hypothesis, schemathesis, ruff): only tests need them.
$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[cli,dev]'
	touch $@

$(TOOLS)/%/.installed: .ci/tools-%.txt
	test -x $(TOOLS)/$*/bin/python || $(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/$*/bin/python -m pip install --quiet -r $<
	touch $@

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .hypothesis build *.egg-info
