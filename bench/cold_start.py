"""One cold start, in a fresh process: import, fetch, verify, load, predict. Run by bench/run.py as
`python -S cold_start.py ours|seed` with only one image's packages on the path; prints timings as JSON.
BENCH_MODEL names the model (the seed's way reads it from that key, its scaler from BENCH_SCALER_KEY)."""

import time

STARTED = time.perf_counter()

import json  # noqa: E402 - the clock starts before any import
import os  # noqa: E402
import sys  # noqa: E402


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "inference", 1024, "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:inference"


def main() -> None:
    model = os.environ.get("BENCH_MODEL", "Model_ml")
    if sys.argv[1] == "ours":
        from deployment_model.inference.app import lambda_handler

        imported = time.perf_counter()
        answer = lambda_handler({"x_test": [0.7, 1], "filename_model": model}, Context())
    else:
        import boto3
        from seed import seed_predict

        imported = time.perf_counter()
        keys = (model, os.environ.get("BENCH_SCALER_KEY", "scaler"))
        answer = seed_predict(boto3.client("s3"), os.environ["MODEL_BUCKET"], [0.7, 1], *keys)
    done = time.perf_counter()
    timings = {"import_ms": (imported - STARTED) * 1e3, "first_answer_ms": (done - STARTED) * 1e3}
    modules = {f"{name}_imported": name in sys.modules for name in ("pandas", "sklearn", "scipy", "joblib")}
    print(json.dumps({**timings, "result": answer["result"], **modules}))


main()
