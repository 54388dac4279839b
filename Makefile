# The two commands of the quick start are `make run` and `make test`; everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS := deployment_model/inference/requirements.txt deployment_model/train/requirements.txt
STAMP := $(VENV)/.installed

.PHONY: run test lint format openapi diagram clean

## run: serve POST /train, /predict, /inference on http://127.0.0.1:3000 (models in .model-store/)
run: $(STAMP)
	$(BIN)/python -m deployment_model serve

## test: lint, then every test (unit, integration, stack)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## openapi: regenerate docs/openapi.json from the handlers' routes and models
openapi: $(STAMP)
	$(BIN)/python -c "import json; from deployment_model.local import configure_environment, openapi_document; configure_environment('.model-store'); print(json.dumps(openapi_document(), indent=2))" > docs/openapi.json

## diagram: redraw images/architecture.{png,svg} from images/architecture.dot (needs Graphviz: apt-get install graphviz)
diagram:
	dot -Tpng -Gdpi=110 images/architecture.dot -o images/architecture.png
	dot -Tsvg images/architecture.dot -o images/architecture.svg

# The runtime venv: the functions' exact pins, the package itself, and the dev tools.
$(STAMP): pyproject.toml $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r deployment_model/train/requirements.txt -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
