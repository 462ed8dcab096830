"""Configuration checks itself, and secrets stay out of repr."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from sqs_async import RetryPolicy, SenderConfig, SqsSender

URL = "https://sqs.us-east-1.amazonaws.com/1/q"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "exactly one of queue_url and queue_name"),
        ({"queue_url": URL, "queue_name": "q"}, "exactly one"),
        ({"queue_url": ""}, "queue_url"),
        ({"queue_url": URL, "max_in_flight": 0}, "max_in_flight"),
        ({"queue_url": URL, "max_in_flight": True}, "max_in_flight"),
        ({"queue_url": URL, "max_trials": 0}, "max_trials"),
        ({"queue_url": URL, "max_message_bytes": 2_000_000}, "cannot exceed"),
        ({"queue_url": URL, "read_timeout": 0}, "read_timeout"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        SenderConfig(**settings)


def test_retry_policy_checks_itself() -> None:
    with pytest.raises(ValueError, match="initial_backoff"):
        RetryPolicy(initial_backoff=-1)
    with pytest.raises(TypeError, match="max_trials"):
        RetryPolicy(max_trials=2.5)  # type: ignore[arg-type]


def test_max_trials_shortcut_sets_the_policy() -> None:
    config = SenderConfig(queue_url=URL, max_trials=5, retry=RetryPolicy(initial_backoff=1))
    assert config.retry == RetryPolicy(max_trials=5, initial_backoff=1)
    assert SenderConfig(queue_url=URL).retry.max_trials == 3  # the seed's default


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(TypeError, match="max_inflight"):
        SqsSender(queue_url=URL, max_inflight=3)


def test_secrets_are_not_in_repr_and_config_pickles() -> None:
    config = SenderConfig(
        queue_url=URL,
        aws_access_key_id="AKIAEXAMPLEKEY",
        aws_secret_access_key="very-secret",
        aws_session_token="session-secret",
    )
    for text in (repr(config), repr(SqsSender(config))):
        for secret in ("AKIAEXAMPLEKEY", "very-secret", "session-secret"):
            assert secret not in text
    assert pickle.loads(pickle.dumps(config)) == config


async def test_send_before_open_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await SqsSender(queue_url=URL).send(["a"])


def test_max_trials_shortcut_keeps_the_rest_of_the_policy() -> None:
    from sqs_async import ReceiverConfig, RetryPolicy

    policy = RetryPolicy(initial_backoff=1.0, max_backoff=2.0)
    expected = RetryPolicy(max_trials=5, initial_backoff=1.0, max_backoff=2.0)
    assert SenderConfig(queue_name="q", retry=policy, max_trials=5).retry == expected
    assert ReceiverConfig(queue_name="q", retry=policy, max_trials=5).retry == expected
