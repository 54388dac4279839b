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
# Swagger UI for the local server's /docs page, from npm's swagger-ui-dist (PyPI's copies are 4.x, which cannot
# render OpenAPI 3.1), checked against its registry integrity; kept in .vendor/, never in the Lambda images.
SWAGGER_UI_VERSION := 5.35.0
SWAGGER_UI_INTEGRITY := sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
SWAGGER_UI := .vendor/swagger-ui
SWAGGER_UI_STAMP := $(SWAGGER_UI)/.installed-$(SWAGGER_UI_VERSION)

.PHONY: run test system-packages tools swagger-ui bench lint format openapi diagram mutation clean

## run: serve the API on http://127.0.0.1:3000 (models in .model-store/), /docs to try it; another port: make run PORT=3001
run: $(RUN_STAMP)
	$(MAKE) swagger-ui || echo "warning: no npm, so no Swagger UI assets: /docs will say how to add them"
	$(BIN)/python -m deployment_model serve --port $(PORT)

## test: lint, then every test (unit, integration, stack); builds the runtime and tools venvs first
test: system-packages $(DEV_STAMP) $(TOOL_STAMPS) $(SWAGGER_UI_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	REQUIRE_TOOLS=1 $(BIN)/python -m pytest

# The system packages make test needs (the browser tests' Chromium and its driver, npm for Swagger UI), named in
# one line before minutes of installing; .ci/run installs them on a fresh CI machine.
system-packages:
	@missing=""; for command in chromium chromedriver npm; do command -v $$command >/dev/null || missing="$$missing $$command"; done; \
	if [ -n "$$missing" ]; then echo "make test needs:$$missing (Debian: sudo apt-get install chromium chromium-driver npm)"; exit 1; fi

## tools: the SAM CLI, cfn-lint, hadolint and checkov, in their own venvs
tools: $(TOOL_STAMPS)

## swagger-ui: the Swagger UI assets the local server's /docs page serves (npm pack, integrity-checked)
swagger-ui: $(SWAGGER_UI_STAMP)

$(SWAGGER_UI_STAMP):
	rm -rf $(SWAGGER_UI) && mkdir -p $(SWAGGER_UI)
	cd $(SWAGGER_UI) && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) >/dev/null
	$(PYTHON) -c 'import base64, hashlib, sys; data = open(sys.argv[1], "rb").read(); \
	  sys.exit("swagger-ui-dist: integrity mismatch" if "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode() != sys.argv[2] else 0)' \
	  $(SWAGGER_UI)/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz '$(SWAGGER_UI_INTEGRITY)'
	tar -xzf $(SWAGGER_UI)/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz -C $(SWAGGER_UI) --strip-components=1 \
	  package/swagger-ui-bundle.js package/swagger-ui.css package/favicon-32x32.png package/LICENSE package/NOTICE
	rm $(SWAGGER_UI)/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz
	touch $@

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

# The modules `make mutation` mutates (pyproject's [tool.mutmut] only_mutate lists the same); one worker by default.
MODULES ?= api/errors ml/input_limits ml/budget ml/candidates ml/datasets ml/prediction storage/objects \
  storage/registry storage/publishing storage/model_cache storage/jobs
MUTATION_WORKERS ?= 1

## mutation: mutation testing of the core modules by the unit tests, then the score; a subset: make mutation MODULES=storage/model_cache
mutation: $(DEV_STAMP)
	$(BIN)/mutmut run --max-children $(MUTATION_WORKERS) $(foreach m,$(MODULES),'deployment_model.$(subst /,.,$(m)).*')
	$(BIN)/mutmut results --all true | $(BIN)/python tests/mutation_score.py $(MODULES)

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
	rm -rf $(VENV) $(TOOLS) .vendor mutants .pytest_cache .ruff_cache .hypothesis build *.egg-info
