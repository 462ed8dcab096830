"""What code written against the released sqs-pyio==0.1.0 relies on, kept by beam_adapter.

Each test states the release's behaviour (read from its wheel: `sqs_pyio/io.py`,
`boto3_client.py`, `options.py`) and checks ours against the local server.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from beam_adapter import SqsClientError, WriteToSqs
from sqs_async.testing import LocalSqsServer

from .conftest import bodies, options
from .faults import FaultyClient

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration

# moto's default account: the owner of every queue on the local server.
ACCOUNT = "123456789012"
_queue_url_requests: list[dict[str, Any]] = []


class RecordingClient(FaultyClient):
    """Records every GetQueueUrl request (the pipeline runs in this process)."""

    async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
        _queue_url_requests.append(kwargs)
        return await super().get_queue_url(**kwargs)


def records(n: int) -> list[dict[str, str]]:
    return [{"Id": str(i), "MessageBody": str(i)} for i in range(n)]


def test_positional_arguments_mean_what_they_meant_in_the_release(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    # WriteToSqs(queue_name, owner_acc_id, max_trials, append_error, failed_output)
    name = queue_url.rsplit("/", 1)[1]
    transform = WriteToSqs(name, ACCOUNT, 2, False, "dead")
    config, sink = transform._config, transform._sink
    assert (config.queue_name, config.queue_owner_account_id) == (name, ACCOUNT)
    assert config.retry.max_trials == 2
    assert (sink.append_error, sink.failed_output) == (False, "dead")
    _queue_url_requests.clear()
    with beam.Pipeline(options=options(server)) as p:
        output = (
            p
            | beam.Create([records(3)])
            | WriteToSqs(name, ACCOUNT, 3, True, client_wrapper=RecordingClient)
        )
        assert_that(output["write-to-sqs-failed-output"], equal_to([]))
    assert sorted(bodies(sync_client, queue_url)) == ["0", "1", "2"]
    assert _queue_url_requests == [{"QueueName": name, "QueueOwnerAWSAccountId": ACCOUNT}]


def test_everything_new_is_keyword_only_and_fake_config_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="positional"):
        WriteToSqs("q", None, 3, True, "out", "sixth")  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"fake_config.*LocalSqsServer"):
        WriteToSqs("q", fake_config={"num_success": 1})
    with pytest.raises(ValueError, match="12-digit"):
        WriteToSqs("q", "not-an-account")
    with pytest.raises(ValueError, match="goes with queue_name"):
        WriteToSqs(owner_acc_id=ACCOUNT, queue_url="http://127.0.0.1:1/123456789012/q")


def fail_odd(body: str, attempt: int) -> tuple[str, bool] | None:
    return ("error-code", False) if int(body) % 2 else None


def test_failed_output_is_the_releases_tuple_with_each_records_own_error(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    # The release zips failed records with SQS's Failed list in answer order; SQS may answer
    # in any order (reverse_results), and each record must still get its own error.
    wrapper = functools.partial(FaultyClient, entry_fault=fail_odd, reverse_results=True)
    with beam.Pipeline(options=options(server)) as p:
        output = (
            p
            | beam.Create([records(6)])
            | WriteToSqs(queue_url=queue_url, max_trials=2, client_wrapper=wrapper)
        )
        assert_that(
            output[WriteToSqs.FAILED_OUTPUT],
            equal_to(
                [
                    (
                        {"Id": str(i), "MessageBody": str(i)},
                        {
                            "Id": str(i),
                            "SenderFault": False,
                            "Code": "error-code",
                            "Message": "error-code",
                        },
                    )
                    for i in (1, 3, 5)
                ]
            ),
        )
    assert sorted(bodies(sync_client, queue_url)) == ["0", "2", "4"]


def released_counters(result: Any) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace("_SqsWriteFn"))
    return {c.key.metric.name: c.committed for c in query["counters"]}


@pytest.mark.parametrize("failing", [False, True])
def test_the_releases_counters_are_kept(
    failing: bool, server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    wrapper = functools.partial(FaultyClient, entry_fault=fail_odd if failing else None)
    p = beam.Pipeline(options=options(server))
    _ = (
        p
        | beam.Create([records(7), records(3)])
        | WriteToSqs(queue_url=queue_url, max_trials=1, client_wrapper=wrapper)
    )
    result = p.run()
    result.wait_until_finish()
    failed = 4 if failing else 0  # 1, 3, 5 of the first list, 1 of the second
    assert released_counters(result) == {
        "total_elements_count": 10,
        "succeeded_elements_count": 10 - failed,
        "failed_elements_count": failed,
    }
    assert len(bodies(sync_client, queue_url)) == 10 - failed


def test_sqs_client_error_has_the_releases_constructor_and_attributes() -> None:
    bare = SqsClientError()
    assert (bare.message, bare.code) == (None, None)
    assert str(bare) == "SqsClientError"
    error = SqsClientError("Records should be a list.", "InvalidRecords")
    assert (error.message, error.code) == ("Records should be a list.", "InvalidRecords")
    assert str(error) == "Records should be a list."
    assert SqsClientError(message="m", code="c").code == "c"


def test_a_missing_queue_raises_sqs_client_error_with_code_and_status(
    server: LocalSqsServer,
) -> None:
    with pytest.raises(Exception) as raised, beam.Pipeline(options=options(server)) as p:
        _ = p | beam.Create([["m"]]) | WriteToSqs("no-such-queue")
    error = raised.value
    while error is not None and not isinstance(error, SqsClientError):
        error = error.__cause__ or error.__context__  # Beam may wrap what the DoFn raised
    assert error is not None, f"not an SqsClientError: {raised.value!r}"
    assert error.code == "QueueDoesNotExist"
    assert error.http_status == 400
    assert "no-such-queue" in str(error) and "check the queue name" in str(error)


SIBLING = textwrap.dedent(
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    class FirehoseOptions(PipelineOptions):  # as firehose_pyio defines them: no conflict handling
        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_argument("--aws_access_key_id", default=None)
            parser.add_argument("--aws_secret_access_key", default=None)
            parser.add_argument("--endpoint_url", default=None)
            parser.add_argument("--region_name", default=None)
            parser.add_argument("--verify", default=None)
    """
)
RUNNER_PARSE = textwrap.dedent(
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.portable_runner import JobServiceHandle
    flags = ["--aws_access_key_id=AKIAOURKEY", "--aws_secret_access_key=s3cr3tvalue",
             "--region_name=eu-west-1", "--endpoint_url=http://127.0.0.1:9", "--verify=false"]
    options = PipelineOptions(flags)
    # What runners do: read every option, send them as a proto, rebuild them on a worker.
    every = options.get_all_options(retain_unknown_options=True)
    JobServiceHandle.encode_pipeline_options(every)
    settings = options.view_as(SqsOptions).sender_settings()  # what WriteToSqs.expand reads
    again = PipelineOptions.from_dictionary(options.get_all_options())
    again = PipelineOptions.from_dictionary(again.get_all_options())
    print(sorted(settings.items()))
    print(sorted(again.view_as(SqsOptions).sender_settings().items()))
    print("firehose sees", options.view_as(FirehoseOptions).region_name)
    print("sent", sorted(options.get_all_options(drop_default=True).items()))
    """
)


@pytest.mark.parametrize("sibling_first", [True, False])
def test_flags_beside_another_packages_identical_flags_parse_as_runners_parse(
    sibling_first: bool,
) -> None:
    ours = "from beam_adapter import SqsOptions\n"
    program = (SIBLING + ours if sibling_first else ours + SIBLING) + RUNNER_PARSE
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    first, again, firehose, sent = run.stdout.strip().splitlines()
    expected = (
        "[('aws_access_key_id', 'AKIAOURKEY'), ('aws_secret_access_key', 's3cr3tvalue'), "
        "('endpoint_url', 'http://127.0.0.1:9'), ('region_name', 'eu-west-1'), "
        "('verify', False)]"
    )
    assert first == expected
    assert again == expected  # placeholders survive re-parses: never the credential itself
    assert firehose == "firehose sees eu-west-1"
    assert "s3cr3tvalue" not in sent and "AKIAOURKEY" not in sent and "<secret " in sent


def test_sqs_client_error_survives_pickling_with_its_code() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(SqsClientError("gone", "QueueDoesNotExist", 400)))
    assert (error.message, error.code, error.http_status, str(error)) == (
        "gone",
        "QueueDoesNotExist",
        400,
        "gone",
    )
