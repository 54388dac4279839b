"""The local server's route table comes from template.yaml's Api events, as `sam local start-api` reads it:
one declaration of each route, wherever it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployment_model.local.routes import RouteTable, TemplateError, load_route_table
from tests.conftest import ROOT

THINGS_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Environment:
      Variables:
        SOMETHING: !Ref Other
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref Stage
  ThingsFunction:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Image
      ImageConfig:
        Command: ["tests.things_app.lambda_handler"]
      Events:
        Create: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /things, Method: POST}}
        Get: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/things/{name}", Method: get}}
        Delete: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/things/{name}", Method: DELETE}}
        Resize: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/things/{name}/resize", Method: POST}}
        Queue: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
  FilesFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tests/
      Handler: things_app.lambda_handler
      Events:
        Everything: {Type: Api, Properties: {Path: "/files/{key+}", Method: ANY}}
        Static: {Type: Api, Properties: {Path: "/things/special", Method: GET}}
"""


@pytest.fixture
def things(tmp_path: Path) -> RouteTable:
    template = tmp_path / "template.yaml"
    template.write_text(THINGS_TEMPLATE)
    return load_route_table(template)


def test_the_projects_routes_are_the_templates() -> None:
    table = load_route_table()
    assert {(r.method, r.path): r.function for r in table.routes}.items() >= {
        ("POST", "/train"): "TrainFunction",
        ("POST", "/predict"): "InferenceFunction",
        ("POST", "/inference"): "InferenceFunction",
    }.items()
    # The handler each image runs is its Dockerfile's CMD.
    assert table.handlers["TrainFunction"] == "deployment_model.train.app.lambda_handler"
    assert table.handlers["InferenceFunction"] == "deployment_model.inference.app.lambda_handler"


def test_routes_with_path_parameters_methods_in_any_case_and_trailing_slashes(things: RouteTable) -> None:
    found = things.match("GET", "/things/a%20b/")
    assert found is not None and found.route.function == "ThingsFunction" and found.route.path == "/things/{name}"
    assert found.path_parameters == {"name": "a%20b"}
    assert things.match("get", "/things/a").route.method == "GET"
    assert things.match("POST", "/things/a/resize").route.path == "/things/{name}/resize"
    assert things.match("PUT", "/things/a") is None and things.allowed_methods("/things/a") == ["DELETE", "GET"]
    assert things.match("GET", "/nope") is None and things.allowed_methods("/nope") == []


def test_a_static_path_wins_over_a_parameter_and_greedy_parameters_take_the_rest(things: RouteTable) -> None:
    assert things.match("GET", "/things/special").route.function == "FilesFunction"
    found = things.match("PATCH", "/files/a/b/c.csv")
    assert found.route.method == "ANY" and found.path_parameters == {"key": "a/b/c.csv"}


def test_handlers_from_image_commands_and_zip_handlers(things: RouteTable) -> None:
    assert things.handlers == {
        "ThingsFunction": "tests.things_app.lambda_handler",
        "FilesFunction": "tests.things_app.lambda_handler",
    }
    assert things.function_named("things") == "ThingsFunction" == things.function_named("ThingsFunction")
    with pytest.raises(KeyError, match="FilesFunction, ThingsFunction"):
        things.function_named("nothing")


def test_the_route_names_are_what_a_404_lists(things: RouteTable) -> None:
    assert things.names() == [
        "ANY /files/{key+}",
        "POST /things",
        "GET /things/special",
        "DELETE /things/{name}",
        "GET /things/{name}",
        "POST /things/{name}/resize",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Resources: {F: {Type: AWS::Serverless::Function, Properties: {}}}", "F: no handler"),
        ("Resources: [1]", "Resources"),
        (": : :", "not valid YAML"),
    ],
)
def test_a_template_it_cannot_read_is_a_clear_error(tmp_path: Path, text: str, words: str) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(text)
    with pytest.raises(TemplateError, match=words):
        load_route_table(template)


def test_importing_the_local_server_parses_nothing_and_the_table_is_read_once() -> None:
    code = (
        "import sys\n"
        "import deployment_model.local.server as server\n"
        "print('yaml' in sys.modules)\n"
        "from deployment_model.local.routes import load_route_table\n"
        "print(load_route_table() is load_route_table())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "True"]
