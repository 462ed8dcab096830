"""Schema'd rows for SQS messages, both ways: what `ReadFromSqs` yields as `beam.Row`s with a
declared schema, and `beam.Row`s as the entries `WriteToSqs` sends. Beam YAML's `ReadFromSqs`
and `WriteToSqs` (yaml_transforms.py) are these around the Python transforms; Python pipelines
compose them the same way:

    rows = p | ReadFromSqs(queue_name="in", with_receipt_handle=True) | SqsMessagesToRows()
    rows | WriteToSqs(queue_name="out", serializer=RowToEntry())

The read's row: Java's `SqsReadSchemaTransform` fields first, `body`, `message_id`,
`receipt_handle`, `timestamp` (the message's `SentTimestamp`, ms since the epoch) and
`request_timestamp` (when the reader handed the message on, ms, moments after the receive);
then `attributes` (the sender's message attributes as text: String and Number values as
SQS stores them, Binary values base64-encoded), `message_group_id` and `sequence_number`
(FIFO queues; None otherwise), `receive_count` (`ApproximateReceiveCount`) and
`payload_location` (`s3://bucket/key` for a body stored in S3, see `sqs_async.offload`; None
otherwise). With
`format="JSON"` the body's parsed fields take the place of `body`.

Errors take Beam YAML's standard shape, `Row(element=..., msg=..., stack=...)`.
"""

import base64
import json
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Optional

import apache_beam as beam
from apache_beam.portability.api import schema_pb2
from apache_beam.pvalue import PCollection, Row, TaggedOutput
from apache_beam.typehints import schemas
from apache_beam.typehints.row_type import RowTypeConstraint

FORMATS = ("RAW", "STRING", "JSON")

# After the body (or the body's fields), in this order.
METADATA_FIELDS: list[tuple[str, Any]] = [
    ("message_id", str),
    ("receipt_handle", Optional[str]),  # noqa: UP045 (Beam's schemas read typing forms)
    ("timestamp", int),
    ("request_timestamp", int),
    ("attributes", Mapping[str, str]),
    ("message_group_id", Optional[str]),  # noqa: UP045
    ("sequence_number", Optional[str]),  # noqa: UP045
    ("receive_count", int),
    ("payload_location", Optional[str]),  # noqa: UP045
]
METADATA_NAMES = frozenset(name for name, _ in METADATA_FIELDS)


def check_format(format: str, schema: Mapping[str, Any] | None) -> str:
    """The format, upper-cased, after checking it goes with `schema` (JSON needs one)."""
    upper = str(format).upper()
    if upper not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if upper == "JSON" and not schema:
        raise ValueError("format JSON needs a schema: a JSON schema of the body's fields")
    if upper != "JSON" and schema:
        raise ValueError(f"format {upper} does not take a schema")
    return upper


def body_schema(format: str, schema: Mapping[str, Any] | None) -> schema_pb2.Schema:
    """The fields the body becomes: `body` (str, or bytes for RAW), or the JSON schema's."""
    format = check_format(format, schema)
    if format == "JSON":
        from apache_beam.yaml import json_utils  # needs apache-beam[yaml] (jsonschema)

        beam_schema = json_utils.json_schema_to_beam_schema(dict(schema or {}))
        clash = sorted({f.name for f in beam_schema.fields} & METADATA_NAMES)
        if clash:
            raise ValueError(f"the JSON schema's fields {clash} clash with the message's own")
        return beam_schema
    kind = bytes if format == "RAW" else str
    return schema_pb2.Schema(fields=[schemas.schema_field("body", kind)])


def row_schema(format: str = "STRING", schema: Mapping[str, Any] | None = None) -> Any:
    """The read's row type (a NamedTuple type with a Beam schema) for `format` and `schema`."""
    fields = list(body_schema(format, schema).fields)
    fields += [schemas.schema_field(name, kind) for name, kind in METADATA_FIELDS]
    return schemas.named_tuple_from_schema(schema_pb2.Schema(fields=fields))


def error_type(element_type: Any) -> RowTypeConstraint:
    """Beam YAML's error row: `Row(element=..., msg=..., stack=...)`."""
    return RowTypeConstraint.from_fields([("element", element_type), ("msg", str), ("stack", str)])


def attribute_text(value: Mapping[str, Any]) -> str:
    """A message attribute as text: String and Number values as SQS stores them (a Number is
    its decimal text), Binary values base64-encoded."""
    if "StringValue" in value:
        return str(value["StringValue"])
    binary = value.get("BinaryValue")
    if isinstance(binary, str):  # already base64 (as some clients give it)
        return binary
    return base64.b64encode(bytes(binary or b"")).decode("ascii")


def metadata(record: Mapping[str, Any], received_ms: int) -> dict[str, Any]:
    """A `ReadFromSqs` record's fields beside the body."""
    system = record.get("Attributes") or {}
    sent = system.get("SentTimestamp")
    return {
        "message_id": str(record.get("MessageId", "")),
        "receipt_handle": record.get("ReceiptHandle"),
        "timestamp": int(sent) if sent else received_ms,
        "request_timestamp": received_ms,
        "attributes": {
            str(name): attribute_text(value)
            for name, value in (record.get("MessageAttributes") or {}).items()
        },
        "message_group_id": system.get("MessageGroupId"),
        "sequence_number": system.get("SequenceNumber"),
        "receive_count": int(system.get("ApproximateReceiveCount") or 1),
        "payload_location": record.get("PayloadLocation"),
    }


class _ToRowFn(beam.DoFn):
    """A `ReadFromSqs` record as a row; a body that cannot be parsed is an error row (or
    raises, without an error output)."""

    def __init__(self, format: str, schema: Mapping[str, Any] | None, errors: str | None):
        super().__init__()
        self.format = check_format(format, schema)
        self.schema = dict(schema) if schema else None
        self.errors = errors

    def setup(self) -> None:
        if self.format == "JSON":
            from apache_beam.yaml import json_utils

            assert self.schema is not None
            parse = json_utils.json_parser(
                json_utils.json_schema_to_beam_schema(self.schema), self.schema
            )
            self._parse: Any = lambda body: parse(body).as_dict()
        elif self.format == "RAW":
            self._parse = lambda body: {"body": body.encode("utf-8")}
        else:
            self._parse = lambda body: {"body": body}

    def process(self, record: Mapping[str, Any]) -> Iterator[Any]:
        fields = metadata(record, int(time.time() * 1000))
        body = str(record.get("Body", ""))
        try:
            parsed = self._parse(body)
        except Exception as exn:
            if self.errors is None:
                raise
            yield TaggedOutput(
                self.errors,
                Row(
                    element=Row(body=body, **fields),
                    msg=f"{type(exn).__name__}: {exn}",
                    stack=traceback.format_exc(),
                ),
            )
            return
        yield Row(**parsed, **fields)


class SqsMessagesToRows(beam.PTransform):  # type: ignore[type-arg]
    """`ReadFromSqs`'s records as `beam.Row`s with a declared schema (see the module).

    Args:
      format: `STRING` (default: a `body` str field), `RAW` (`body` as UTF-8 bytes) or
        `JSON` (the body parsed into the fields of `schema`).
      schema: the JSON schema of the body, for `format="JSON"`.
      error_output: without it, a body that cannot be parsed fails the bundle (its messages
        are not deleted and come back); with it, the result is `{"main": rows,
        error_output: errors}` and each such message is an error row `Row(element=<the
        STRING row of the message>, msg=..., stack=...)`; it is deleted like the others.

    Read with `with_receipt_handle=True` to fill `receipt_handle`.
    """

    def __init__(
        self,
        format: str = "STRING",
        schema: Mapping[str, Any] | None = None,
        error_output: str | None = None,
    ) -> None:
        super().__init__()
        self._format = check_format(format, schema)
        self._schema = schema
        self._row_type = row_schema(self._format, schema)  # checked now, not on a worker
        self._errors = error_output

    def expand(self, pcoll: PCollection[Any]) -> Any:
        fn = _ToRowFn(self._format, self._schema, self._errors)
        if self._errors is None:
            return pcoll | "ToRows" >> beam.ParDo(fn).with_output_types(self._row_type)
        result = pcoll | "ToRows" >> beam.ParDo(fn).with_outputs(self._errors, main="main")
        rows, errors = result["main"], result[self._errors]
        rows.element_type = self._row_type
        errors.element_type = error_type(row_schema("STRING"))
        return {"main": rows, self._errors: errors}


def jsonable(value: Any) -> Any:
    """A row (nested rows, maps, lists) as JSON-ready values; bytes become base64 text."""
    if hasattr(value, "_asdict"):  # a schema'd row decoded by Beam: a NamedTuple
        value = value._asdict()
    elif isinstance(value, Row):
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # a Timestamp, a Decimal, ...


def field_value(row: Any, name: str) -> Any:
    if hasattr(row, name):
        return getattr(row, name)
    if isinstance(row, Mapping) and name in row:
        return row[name]
    raise KeyError(f"the row has no field {name!r}")


def attribute_entry(value: Any) -> dict[str, Any]:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"DataType": "Binary", "BinaryValue": bytes(value)}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"DataType": "Number", "StringValue": str(value)}
    return {"DataType": "String", "StringValue": str(value)}


class RowToEntry:
    """A row as the SQS entry `WriteToSqs` sends: give it as `serializer=RowToEntry(...)`.

    The body: the field `body_field` (default `body`; a str, or UTF-8 bytes), or with
    `format="JSON"` the whole row as JSON (nested rows as objects, bytes as base64). Optional
    entry fields come from the fields `message_group_id`, `message_deduplication_id`,
    `delay_seconds` and `attributes` (a map of name to value: str as String, numbers as
    Number, bytes as Binary) when the row has them and they are not None, or from the fields
    the `*_field` arguments name (then the row must have them). `message_group_id` gives one
    group for every row. A row that does not fit fails alone (code `InvalidRecord`), as
    anything a serializer raises.
    """

    DEFAULT_FIELDS: ClassVar[dict[str, str]] = {
        "MessageGroupId": "message_group_id",
        "MessageDeduplicationId": "message_deduplication_id",
        "DelaySeconds": "delay_seconds",
        "MessageAttributes": "attributes",
    }

    def __init__(
        self,
        format: str = "STRING",
        body_field: str | None = None,
        *,
        message_group_id: str | None = None,
        message_group_id_field: str | None = None,
        message_deduplication_id_field: str | None = None,
        delay_seconds_field: str | None = None,
        attributes_field: str | None = None,
    ) -> None:
        self.format = str(format).upper()
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        if self.format == "JSON" and body_field is not None:
            raise ValueError("format JSON sends the whole row: it takes no body_field")
        self.body_field = body_field or "body"
        self.message_group_id = message_group_id
        self.named = {
            key: name
            for key, name in {
                "MessageGroupId": message_group_id_field,
                "MessageDeduplicationId": message_deduplication_id_field,
                "DelaySeconds": delay_seconds_field,
                "MessageAttributes": attributes_field,
            }.items()
            if name is not None
        }

    def check_fields(self, fields: list[str] | None) -> None:
        """Refuse, when the pipeline is built, rows that lack a field this serializer names
        (`fields`: the input's, None when unknown)."""
        if fields is None:
            return
        named = list(self.named.values())
        if self.format != "JSON":
            named.insert(0, self.body_field)
        missing = [name for name in named if name not in fields]
        if missing:
            raise ValueError(
                f"the rows have no field {missing[0]!r} (their fields: {', '.join(fields)}): "
                "name another with body_field or the *_field options, or send the whole row "
                "with format JSON"
            )

    def __call__(self, row: Any) -> dict[str, Any]:
        if self.format == "JSON":
            body: Any = json.dumps(jsonable(row), separators=(",", ":"), ensure_ascii=False)
        else:
            body = field_value(row, self.body_field)
            if isinstance(body, bytes | bytearray | memoryview):
                body = bytes(body).decode("utf-8")
        entry: dict[str, Any] = {"MessageBody": body}
        if self.message_group_id is not None:
            entry["MessageGroupId"] = self.message_group_id
        for key, default in self.DEFAULT_FIELDS.items():
            if key in self.named:
                value = field_value(row, self.named[key])
            else:
                value = getattr(row, default, None) if hasattr(row, default) else None
            if value is None or key in entry:
                continue
            if key == "MessageAttributes":
                value = {str(k): attribute_entry(v) for k, v in jsonable_map(value).items()}
                if not value:
                    continue
            entry[key] = value
        return entry


def jsonable_map(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if hasattr(value, "_asdict"):
        return dict(value._asdict())
    if isinstance(value, Row):
        return dict(value.as_dict())
    raise TypeError(f"attributes must be a map, not {type(value).__name__}")
