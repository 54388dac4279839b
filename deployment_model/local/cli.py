"""`python -m deployment_model serve | train | predict | export | openapi`: the service on a laptop, no AWS, no Docker.

`train` and `predict` invoke the handlers directly, as the Lambda console or `sam local invoke` would.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from deployment_model.local.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_STORE_DIR,
    OPENAPI_PATH,
    configure_environment,
    invoke,
    make_server,
    openapi_document,
    proxy_event,
)


def _rows(values: Sequence[str]) -> list[list[float]]:
    try:
        return [[float(v) for v in row.split(",")] for row in values]
    except ValueError:
        raise SystemExit("each row is comma-separated numbers, e.g. 0.7,1") from None


def _print_answer(answer: dict[str, Any]) -> int:
    print(json.dumps(answer, indent=2))
    return 0 if answer.get("statusCode", 500) < 400 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployment_model", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store-dir",
        help=f"local model folder (default {DEFAULT_STORE_DIR}; S3 when MODEL_BUCKET is set and this is not)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve POST /train, /predict, /inference locally")
    serve.add_argument("--host", default=DEFAULT_HOST, help="bind address (default loopback only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)

    train = commands.add_parser("train", help="train and publish a model (a direct invocation)")
    train.add_argument("--filename-model", default=None)
    train.add_argument("--filename-scaler", default=None)
    train.add_argument("--data-key", help="CSV key in the store; omitted: the iris recipe")
    train.add_argument("--target-column")
    train.add_argument("--feature-columns", help="comma-separated")
    train.add_argument("--candidates", help="comma-separated: knn,sgd,logistic_regression,random_forest")

    commands.add_parser("openapi", help="print the OpenAPI document of both functions' routes")

    predict = commands.add_parser("predict", help="predict rows (a direct invocation)")
    predict.add_argument("rows", nargs="+", help="one or more rows, each comma-separated, e.g. 0.7,1 2.0,5.5")
    predict.add_argument("--filename-model", default=None)
    predict.add_argument("--model-version", default=None)

    export = commands.add_parser("export", help="convert a version trained before ONNX into one inference serves")
    export.add_argument("name", help="the model (filename_model)")
    export.add_argument("version", help="the version to convert")
    export.add_argument("--publish", action="store_true", help="also publish the converted version")

    args = parser.parse_args(argv)
    configure_environment(args.store_dir)

    if args.command == "serve":
        server = make_server(args.host, args.port)
        where = "loopback only" if args.host in ("127.0.0.1", "localhost", "::1") else "EXPOSED beyond this machine"
        store = os.environ.get("MODEL_STORE_DIR") or f"s3://{os.environ['MODEL_BUCKET']}"
        print(f"Serving on http://{args.host}:{server.server_port} ({where}); models in {store}", flush=True)
        print(f"Routes: POST /train, POST /predict, POST /inference; OpenAPI at {OPENAPI_PATH}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0

    if args.command == "openapi":
        print(json.dumps(openapi_document(), indent=2))
        return 0

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the answer is the output; logs only on trouble
    if args.command == "export":  # a route with path parameters: sent as the API Gateway event it would be
        path = f"/models/{quote(args.name, safe='')}/versions/{quote(args.version, safe='')}/export"
        body = json.dumps({"publish": args.publish}).encode()
        answer = invoke("train", proxy_event("POST", path, {"Content-Type": "application/json"}, body, "127.0.0.1"))
        return _print_answer({"statusCode": answer["statusCode"], **json.loads(answer["body"])})
    options = {"filename_model": args.filename_model}
    if args.command == "train":
        options |= {
            "filename_scaler": args.filename_scaler,
            "data_key": args.data_key,
            "target_column": args.target_column,
            "feature_columns": args.feature_columns.split(",") if args.feature_columns else None,
            "candidates": args.candidates.split(",") if args.candidates else None,
        }
        return _print_answer(invoke("train", {k: v for k, v in options.items() if v is not None}))
    rows = _rows(args.rows)
    options |= {"x_test": rows[0] if len(rows) == 1 else rows, "model_version": args.model_version}
    return _print_answer(invoke("inference", {k: v for k, v in options.items() if v is not None}))
