"""Beam YAML's `ReadFromSqs` and `WriteToSqs`: the constructors the provider listing
(`beam_adapter/sqs_provider.yaml`) names.

Beam YAML derives each transform's config schema and documentation from `__init__`'s
signature, type hints and the class's Google-style `Args:`; it reads the hints at run time and
understands `typing.Optional`, not `X | None` (hence the `Optional`s, and no
`from __future__ import annotations` here). Parameters are keyword-only, snake_case and plain
(no clients, no callables). Names follow Java's SQS schema transform where they overlap
(`queue_url`, `region`, `max_num_records`, `max_read_time_secs`).

Secrets given in config (`aws_secret_access_key`, ...) are kept out of what Beam records: the
transform's `yaml_args` annotation holds placeholders, and so does the pipeline's display data
(Beam YAML puts the pipeline's text there). Flags (`--aws_secret_access_key`, masked by
`SqsOptions`) or the standard AWS chain are better still: the YAML file then holds no secret.
"""

# ruff: noqa: UP045
import json
from collections.abc import Iterator
from typing import Any, NamedTuple, Optional

import apache_beam as beam
from apache_beam.pvalue import PCollection, Row
from apache_beam.typehints import schemas

from sqs_async import defaults

from .options import SECRET_FLAGS, secret
from .rows import RowToEntry, SqsMessagesToRows, check_format, error_type
from .sink import WriteToSqs
from .source import ReadFromSqs


class ErrorHandling(NamedTuple):
    """Where error rows go.

    Args:
      output: the name of the output that carries the error rows.
    """

    output: str


def _output_name(error_handling: Any) -> Optional[str]:
    if error_handling is None:
        return None
    output = error_handling.get("output") if isinstance(error_handling, dict) else None
    if output is None and hasattr(error_handling, "output"):
        output = error_handling.output
    if not isinstance(output, str) or not output:
        raise ValueError(f"error_handling needs an output name, got {error_handling!r}")
    return output


# Config keys that say how to reach SQS, and the engine's names for them.
_CONNECTION = {"region": "region_name", "endpoint_url": "endpoint_url"} | {
    name: name for name in SECRET_FLAGS
}


def _connection(given: dict[str, Any]) -> dict[str, Any]:
    """The connection settings among a constructor's arguments, those given."""
    return {ours: given[key] for key, ours in _CONNECTION.items() if given.get(key) is not None}


class _YamlTransform(beam.PTransform):  # type: ignore[type-arg]
    """Keeps given secrets out of the annotations and display data Beam records."""

    def _remember(self, given: dict[str, Any]) -> None:
        self._secrets = {n: str(given[n]) for n in SECRET_FLAGS if given.get(n) is not None}
        self._yaml_args = {
            name: secret(str(value)) if name in self._secrets else value
            for name, value in given.items()
            if value is not None
        }

    def annotations(self) -> dict[str, Any]:
        # Beam YAML records the config as the `yaml_args` annotation; ours wins (it is
        # merged after Beam's) and holds placeholders for the secrets.
        return {**super().annotations(), "yaml_args": json.dumps(self._yaml_args, default=str)}

    def _scrub(self, pipeline: beam.Pipeline) -> None:
        """Beam YAML's runner puts the pipeline's text in the pipeline's display data."""
        data = getattr(pipeline, "_display_data", None)
        if not self._secrets or not isinstance(data, dict):
            return
        for key, value in list(data.items()):
            if isinstance(value, str):
                for real in self._secrets.values():
                    value = value.replace(real, secret(real))
                data[key] = value


class YamlReadFromSqs(_YamlTransform):
    """Reads messages from an Amazon SQS queue as rows, at least once: each message is deleted
    after the runner has committed the bundle that emitted it.

    Each row has the body (or its parsed fields), then `message_id`, `receipt_handle`,
    `timestamp` (sent time, ms since the epoch), `request_timestamp` (ms), `attributes` (a
    map of str to str: Number values as their decimal text, Binary values base64-encoded),
    `message_group_id` and `sequence_number` (FIFO queues, else null), `receive_count` and
    `payload_location` (where a body stored in S3 was, else null). Bounded when
    `max_num_records`, `max_read_time_secs` or `until_empty` is given, else a streaming read.

    Args:
      queue_url: the queue's URL. Give this or queue_name.
      queue_name: the queue's name, looked up with GetQueueUrl.
      region: the AWS region, such as us-east-1 (default: --region_name or the AWS chain).
      endpoint_url: the SQS endpoint, for a local server (default: --endpoint_url).
      max_num_records: stop after this many messages.
      max_read_time_secs: stop after this many seconds.
      until_empty: stop once a poll of wait_time_seconds found the queue empty.
      wait_time_seconds: the long poll's wait, 0 to 20 (default 20).
      format: the body's format. STRING (default) gives a `body` str field; RAW a `body`
        bytes field (UTF-8); JSON parses the body into the fields `schema` declares.
      schema: the JSON schema of the body, for format JSON.
      aws_access_key_id: an access key id (prefer --aws_access_key_id or the AWS chain).
      aws_secret_access_key: its secret (prefer --aws_secret_access_key or the AWS chain).
      aws_session_token: a session token, with temporary credentials.
      error_handling: with `output: NAME`, a body that format JSON cannot parse becomes a
        row `Row(element=<the message as a STRING row>, msg=..., stack=...)` on output NAME
        (and is deleted, as delivered); without it, such a body fails the pipeline.
      delete_after: `commit` (default): a message is deleted once the runner has committed
        the bundle that emitted it; `output`: once emitted, for runners that never finalize
        bundles (portable Flink in batch mode, portable Spark), where a bundle that fails
        after emitting loses its messages.
    """

    def __init__(
        self,
        *,
        queue_url: Optional[str] = None,
        queue_name: Optional[str] = None,
        region: Optional[str] = None,
        endpoint_url: Optional[str] = None,
        max_num_records: Optional[int] = None,
        max_read_time_secs: Optional[int] = None,
        until_empty: bool = False,
        wait_time_seconds: Optional[int] = None,
        format: str = "STRING",
        schema: Optional[dict[str, Any]] = None,
        aws_access_key_id: Optional[str] = None,
        aws_secret_access_key: Optional[str] = None,
        aws_session_token: Optional[str] = None,
        error_handling: Optional[ErrorHandling] = None,
        delete_after: str = "commit",
    ) -> None:
        super().__init__()
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._remember(given)
        settings = _connection(given)
        if wait_time_seconds is not None:
            settings["wait_time_seconds"] = wait_time_seconds
        self._read = ReadFromSqs(
            queue_name,
            queue_url=queue_url,
            max_messages=max_num_records,
            max_read_time=max_read_time_secs,
            until_empty=until_empty,
            with_receipt_handle=True,
            delete_after=delete_after,  # type: ignore[arg-type]  # checked by ReadFromSqs
            **settings,
        )
        self._rows = SqsMessagesToRows(
            check_format(format, schema), schema, error_output=_output_name(error_handling)
        )

    def expand(self, pbegin: beam.pvalue.PBegin) -> Any:
        self._scrub(pbegin.pipeline)
        return pbegin | "Read" >> self._read | "ToRows" >> self._rows


class _FailPipeline(beam.DoFn):
    """Without error handling, a record SQS refused fails the pipeline (Beam YAML's rule)."""

    def process(self, failed: Any) -> Iterator[Any]:
        record, error = failed
        raise RuntimeError(
            f"WriteToSqs could not deliver {record!r}: {error['Code']}: {error['Message']} "
            "(add error_handling to route such records instead)"
        )
        yield  # a generator, as Beam expects of process


def _field_names(element_type: Any) -> Optional[list[str]]:
    """The fields of a schema'd input, or None when Beam does not know them."""
    try:
        return [name for name, _ in schemas.named_fields_from_element_type(element_type)]
    except (TypeError, ValueError, AttributeError):
        return None


def _error_row(record: Any, error: dict[str, Any]) -> Row:
    return Row(element=record, msg=f"{error['Code']}: {error['Message']}", stack="")


class YamlWriteToSqs(_YamlTransform):
    """Writes rows to an Amazon SQS queue, one message per row.

    The body is the row's `body` field (or `body_field`), or with format JSON the whole row
    as JSON. The fields `message_group_id`, `message_deduplication_id`, `delay_seconds` and
    `attributes` (a map of name to value), when the row has them and they are not null, fill
    those parts of the message; the `*_field` options name other fields for them.

    Args:
      queue_url: the queue's URL. Give this or queue_name.
      queue_name: the queue's name, looked up with GetQueueUrl.
      region: the AWS region, such as us-east-1 (default: --region_name or the AWS chain).
      endpoint_url: the SQS endpoint, for a local server (default: --endpoint_url).
      format: STRING (default): the body is a field's text; JSON: the whole row as JSON.
      body_field: the field holding the body (default `body`), for format STRING.
      message_group_id: one message group for every row (FIFO queues).
      message_group_id_field: the field holding each row's message group id.
      message_deduplication_id_field: the field holding each row's deduplication id.
      delay_seconds_field: the field holding each row's delay in seconds.
      attributes_field: the field holding each row's message attributes (a map).
      max_trials: attempts per message, the first included (default 3).
      aws_access_key_id: an access key id (prefer --aws_access_key_id or the AWS chain).
      aws_secret_access_key: its secret (prefer --aws_secret_access_key or the AWS chain).
      aws_session_token: a session token, with temporary credentials.
      error_handling: with `output: NAME`, each row SQS refused (invalid, or failing past
        max_trials) is a row `Row(element=<the row>, msg="<Code>: <Message>", stack="")`
        on output NAME, in the row's window and timestamp; without it, such a row fails the
        pipeline.
    """

    def __init__(
        self,
        *,
        queue_url: Optional[str] = None,
        queue_name: Optional[str] = None,
        region: Optional[str] = None,
        endpoint_url: Optional[str] = None,
        format: str = "STRING",
        body_field: Optional[str] = None,
        message_group_id: Optional[str] = None,
        message_group_id_field: Optional[str] = None,
        message_deduplication_id_field: Optional[str] = None,
        delay_seconds_field: Optional[str] = None,
        attributes_field: Optional[str] = None,
        max_trials: int = defaults.MAX_TRIALS,
        aws_access_key_id: Optional[str] = None,
        aws_secret_access_key: Optional[str] = None,
        aws_session_token: Optional[str] = None,
        error_handling: Optional[ErrorHandling] = None,
    ) -> None:
        super().__init__()
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._remember(given)
        if str(format).upper() == "RAW":
            raise ValueError("WriteToSqs sends text: format is STRING or JSON")
        self._serializer = serializer = RowToEntry(
            check_format(format, {"type": "object"} if str(format).upper() == "JSON" else None),
            body_field,
            message_group_id=message_group_id,
            message_group_id_field=message_group_id_field,
            message_deduplication_id_field=message_deduplication_id_field,
            delay_seconds_field=delay_seconds_field,
            attributes_field=attributes_field,
        )
        settings = _connection(given)
        self._write = WriteToSqs(
            queue_name, None, max_trials, queue_url=queue_url, serializer=serializer, **settings
        )
        self._errors = _output_name(error_handling)

    def expand(self, pcoll: PCollection[Any]) -> Any:
        self._scrub(pcoll.pipeline)
        self._serializer.check_fields(_field_names(pcoll.element_type))
        written = pcoll | "Write" >> self._write
        failed = written[WriteToSqs.FAILED_OUTPUT]
        if self._errors is None:
            _ = failed | "FailPipeline" >> beam.ParDo(_FailPipeline())
            return written[None]
        errors = failed | "ToErrorRows" >> beam.MapTuple(_error_row).with_output_types(
            error_type(pcoll.element_type)
        )
        return {"main": written[None], self._errors: errors}
