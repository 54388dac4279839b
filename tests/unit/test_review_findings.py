"""Defects found by the adversarial review of the registry, jobs, ONNX and client work, each as the behaviour a
user relies on."""

from __future__ import annotations

from tests.conftest import Service, body_of, proxy_event


def test_an_unknown_train_field_is_answered_with_the_json_field_names_a_client_can_send(
    local_service: Service,
) -> None:
    answer = body_of(local_service.train(proxy_event("/train", {"bogus": True})))
    accepted = answer["message"].split("accepted fields: ", 1)[1].split(", ")
    assert "async" in accepted
    assert "async_" not in accepted
