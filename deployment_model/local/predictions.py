"""Predict any number of rows through the service, batch by batch, and write the answers as they come.

One file is labelled by one model version: the first batch's answer names the published version, and every later
batch asks for that version, so a publish in the middle of a long run does not mix two models in one output.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TextIO

import orjson

from deployment_model.local.batches import Batch
from deployment_model.local.client import ServiceClient


def predict_batches(
    client: ServiceClient,
    batches: Iterable[Batch],
    model: str | None = None,
    version: str | None = None,
    scaler: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The service's answer to each batch, in order; `on_batch` hears how many rows each one labelled."""
    for batch in batches:
        fields = {"filename_model": model, "filename_scaler": scaler, "model_version": version}
        extra = orjson.dumps({name: value for name, value in fields.items() if value is not None})
        body = b'{"x_test":' + batch.x_test + (b"," + extra[1:] if extra != b"{}" else b"}")
        answer = client.predict(body)
        version = version or answer["model_version"]
        if on_batch:
            on_batch(batch.rows)
        yield answer


def answer_rows(answer: dict[str, Any]) -> Iterator[tuple[str, int, list[float] | None]]:
    """(label, class index, probabilities or None) for each row of one batch's answer."""
    probabilities = answer.get("probabilities") or [None] * len(answer["result"])
    yield from zip(answer["result"], answer["prediction"], probabilities, strict=True)


class PredictionWriter(Protocol):
    def write(self, answer: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class CsvPredictions:
    """One line per row: label, class_index, then probability_<label> per label when the model has them."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        self._header_written = False

    def write(self, answer: dict[str, Any]) -> None:
        if not self._header_written:
            header = ["label", "class_index"]
            if answer.get("probabilities") is not None:
                header += [f"probability_{label}" for label in answer["labels"]]
            self._writer.writerow(header)
            self._header_written = True
        for label, index, probabilities in answer_rows(answer):
            self._writer.writerow([label, index, *(probabilities or ())])

    def close(self) -> None:
        self._out.flush()


class JsonPredictions:
    """One JSON document, written as the batches come: the model and version once, then a prediction per row."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._rows = 0

    def write(self, answer: dict[str, Any]) -> None:
        if self._rows == 0:
            head = {name: answer[name] for name in ("model_name", "model_version", "labels")}
            self._out.write(orjson.dumps(head).decode()[:-1] + ',"predictions":[\n')
        for label, index, probabilities in answer_rows(answer):
            item = {"label": label, "class_index": index, "probabilities": probabilities}
            self._out.write(("" if self._rows == 0 else ",\n") + orjson.dumps(item).decode())
            self._rows += 1

    def close(self) -> None:
        if self._rows == 0:
            self._out.write('{"predictions":[')
        self._out.write(f'\n],"rows":{self._rows}}}\n')
        self._out.flush()
