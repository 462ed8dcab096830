"""SqsOptions: the seed's flags, secrets kept out of everything a runner shows or logs."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.transforms.display import DisplayData

from beam_adapter import SqsOptions, WriteToSqs
from sqs_async.testing import LocalSqsServer

from .conftest import LOCAL_RUNNER, bodies

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration

SECRETS = {
    "aws_access_key_id": "AKIASECRETKEYID00001",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY",
    "aws_session_token": "FwoGZXIvYXdzEJr//////////wEaDSESSIONTOKEN",
}


def secret_flags() -> list[str]:
    return [f"--{name}={value}" for name, value in SECRETS.items()]


def assert_no_secret(text: str) -> None:
    for value in SECRETS.values():
        assert value not in text


def test_secrets_are_masked_wherever_options_are_shown() -> None:
    options = PipelineOptions([*secret_flags(), "--region_name=eu-west-1"])
    assert_no_secret(repr(options))
    assert_no_secret(repr(options.view_as(SqsOptions)))
    assert_no_secret(str(options.display_data()))
    items = DisplayData.create_from_options(options).items
    assert_no_secret(str([(item.key, item.value) for item in items]))
    # What a portable runner (Flink, Spark) sends to its job service and workers.
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    assert_no_secret(str(encoded))
    # A worker rebuilding options from that dictionary sees placeholders only.
    assert_no_secret(repr(PipelineOptions.from_dictionary(options.get_all_options())))
    # The submitting process can still use them.
    settings = options.view_as(SqsOptions).sender_settings()
    assert {k: settings[k] for k in SECRETS} == SECRETS
    assert settings["region_name"] == "eu-west-1"


def test_secrets_stay_out_of_logs_display_data_and_errors(
    server: LocalSqsServer, sync_client: Any, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # moto accepts any credentials, so the pipeline really runs with the secret values.
    caplog.set_level(logging.DEBUG)
    options = PipelineOptions(
        [
            *secret_flags(),
            f"--endpoint_url={server.endpoint_url}",
            "--region_name=us-east-1",
            LOCAL_RUNNER,
        ]
    )
    pipeline = beam.Pipeline(options=options)
    transform = WriteToSqs(queue_url=queue_url)
    _ = pipeline | beam.Create(["m1", "m2"]) | transform
    pipeline.run().wait_until_finish()
    assert sorted(bodies(sync_client, queue_url)) == ["m1", "m2"]
    # Every log line at INFO and above, and ours at any level. (botocore's own DEBUG lines
    # print request headers, session token included, as with any boto3 program.)
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO or r.name.startswith(("sqs_async", "beam_adapter"))
    ]
    assert logged  # the bundle summary at least
    assert_no_secret(" ".join(logged))
    assert_no_secret(repr(transform))
    assert_no_secret(str(DisplayData.create_from(transform).items))

    failing = beam.Pipeline(options=options)
    _ = failing | beam.Create(["m"]) | WriteToSqs(queue_name="missing-queue")
    with pytest.raises(Exception) as raised:
        failing.run().wait_until_finish()
    assert_no_secret(str(raised.value) + repr(raised.value))


@pytest.mark.parametrize(
    ("flag", "expected"),
    [("false", False), ("False", False), ("true", True), ("/etc/ca.pem", "/etc/ca.pem")],
)
def test_verify_flag_means_what_it_says(flag: str, expected: bool | str) -> None:
    settings = PipelineOptions([f"--verify={flag}"]).view_as(SqsOptions).sender_settings()
    assert settings["verify"] == expected


def test_disable_ssl_and_unset_flags() -> None:
    settings = PipelineOptions(["--disable_ssl"]).view_as(SqsOptions).sender_settings()
    assert settings == {"use_ssl": False}
    assert PipelineOptions([]).view_as(SqsOptions).sender_settings() == {}


def test_transform_settings_win_over_flags(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    options = PipelineOptions(
        [
            "--endpoint_url=http://127.0.0.1:9",
            "--region_name=us-east-1",
            "--aws_access_key_id=x",
            "--aws_secret_access_key=y",
            LOCAL_RUNNER,
        ]
    )
    with beam.Pipeline(options=options) as p:
        _ = (
            p
            | beam.Create(["a"])
            | WriteToSqs(queue_url=queue_url, endpoint_url=server.endpoint_url)
        )
    assert bodies(sync_client, queue_url) == ["a"]


@pytest.mark.parametrize("sibling_first", [True, False])
def test_a_sibling_package_with_the_same_flags_does_not_crash(sibling_first: bool) -> None:
    sibling = textwrap.dedent(
        """
        from apache_beam.options.pipeline_options import PipelineOptions
        class FirehoseOptions(PipelineOptions):  # as firehose_pyio defines them
            @classmethod
            def _add_argparse_args(cls, parser):
                parser.add_argument("--aws_access_key_id")
                parser.add_argument("--aws_secret_access_key")
                parser.add_argument("--region_name")
        """
    )
    ours = "from beam_adapter import SqsOptions\n"
    program = (sibling + ours if sibling_first else ours + sibling) + textwrap.dedent(
        """
        options = PipelineOptions(["--aws_access_key_id=k", "--region_name=r", "--verify=false"])
        print(sorted(options.view_as(SqsOptions).sender_settings().items()))
        print(options.view_as(FirehoseOptions).region_name)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "('region_name', 'r')" in out and "('verify', False)" in out
    assert "('aws_access_key_id', 'k')" in out
    assert out.strip().endswith("r")


async def test_a_pipeline_run_from_inside_an_event_loop_still_works(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    options = PipelineOptions(
        [
            f"--endpoint_url={server.endpoint_url}",
            "--region_name=us-east-1",
            "--aws_access_key_id=t",
            "--aws_secret_access_key=t",
            LOCAL_RUNNER,
        ]
    )
    with beam.Pipeline(options=options) as p:  # blocks this loop until done, then returns
        _ = p | beam.Create(["from-async"]) | WriteToSqs(queue_url=queue_url)
    assert bodies(sync_client, queue_url) == ["from-async"]


async def test_secrets_stay_out_of_reprs_of_sender_and_client(
    server: LocalSqsServer, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from sqs_async import SqsSender

    caplog.set_level(logging.INFO)
    clients: list[Any] = []

    def keep(client: Any) -> Any:
        clients.append(client)
        return client

    sender = SqsSender(
        queue_url=queue_url,
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        client_wrapper=keep,
        **SECRETS,
    )
    async with sender:
        await sender.send(["x"])
        assert_no_secret(repr(sender) + repr(sender.config) + repr(clients[0]))
    assert_no_secret(" ".join(r.getMessage() for r in caplog.records))


def test_secrets_stay_out_of_the_source(
    server: LocalSqsServer, sync_client: Any, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from beam_adapter import ReadFromSqs

    caplog.set_level(logging.DEBUG)
    sync_client.send_message(QueueUrl=queue_url, MessageBody="m")
    options = PipelineOptions(
        [
            *secret_flags(),
            f"--endpoint_url={server.endpoint_url}",
            "--region_name=us-east-1",
            LOCAL_RUNNER,
        ]
    )
    pipeline = beam.Pipeline(options=options)
    transform = ReadFromSqs(queue_url=queue_url, max_messages=1, wait_time_seconds=1)
    _ = pipeline | transform
    pipeline.run().wait_until_finish()
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO or r.name.startswith(("sqs_async", "beam_adapter"))
    ]
    assert_no_secret(" ".join(logged))
    assert_no_secret(repr(transform) + str(DisplayData.create_from(transform).items))


async def test_secrets_stay_out_of_the_receiver(server: LocalSqsServer, queue_url: str) -> None:
    from sqs_async import SqsReceiver

    receiver = SqsReceiver(
        queue_url=queue_url,
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        wait_time_seconds=0,
        **SECRETS,
    )
    async with receiver:
        await receiver.receive(wait=0.1)
        assert_no_secret(repr(receiver) + repr(receiver.config))


def test_secrets_given_as_keywords_are_masked_before_a_runner_sees_them() -> None:
    options = PipelineOptions([LOCAL_RUNNER, "--region_name=r"], **SECRETS)
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | beam.Create(["m"]) | WriteToSqs(queue_url="http://127.0.0.1:9/1/q")
    # What the pipeline's expansion left in its options (Pipeline keeps a copy of the given
    # ones), as a runner reads and sends them.
    sent = pipeline.options
    assert_no_secret(str(sent.get_all_options()))
    assert_no_secret(str(DisplayData.create_from_options(sent).items))
    assert_no_secret(str(JobServiceHandle.encode_pipeline_options(sent.get_all_options())))
    settings = sent.view_as(SqsOptions).sender_settings()
    assert {k: settings[k] for k in SECRETS} == SECRETS


def test_a_placeholder_from_another_process_is_an_error_not_a_credential() -> None:
    foreign = PipelineOptions(["--aws_secret_access_key=<secret 0badc0de>"])
    with pytest.raises(ValueError, match="placeholder from another process"):
        foreign.view_as(SqsOptions).sender_settings()
