"""Beam YAML: the provider listing, the row schemas, error rows, and one real YAML pipeline
(examples/sqs_pipeline.yaml, run as the README's command runs it) against the local server."""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
import yaml
from apache_beam.typehints import schemas
from apache_beam.yaml import main as yaml_main
from apache_beam.yaml import yaml_provider, yaml_transform

from beam_adapter.rows import RowToEntry, SqsMessagesToRows, _ToRowFn, row_schema
from beam_adapter.yaml_transforms import YamlReadFromSqs, YamlWriteToSqs, _FailPipeline
from sqs_async.testing import LocalSqsServer

from .conftest import drain, queue_counts

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sqs_pipeline.yaml"
LISTING = ROOT / "beam_adapter" / "sqs_provider.yaml"
README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## Beam YAML") : README.index("## Migrating from sqs_pyio")]


def providers() -> dict[str, Any]:
    [provider] = yaml_provider.load_providers(str(LISTING))
    return {name: provider for name in provider.provided_transforms()}


def test_listing_is_shipped_and_is_what_the_readme_and_example_use() -> None:
    listing = yaml.safe_load(LISTING.read_text())
    [readme_block] = re.findall(r"```yaml\n(.*?)```", SECTION, flags=re.DOTALL)
    assert yaml.safe_load(readme_block) == listing
    assert yaml.safe_load(EXAMPLE.read_text())["providers"] == listing
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"sqs_provider.yaml"' in pyproject
    assert set(providers()) == {"ReadFromSqs", "WriteToSqs"}


def test_config_schema_and_docs_come_from_the_constructors() -> None:
    found = providers()
    read, write = found["ReadFromSqs"], found["WriteToSqs"]
    assert not read.requires_inputs("ReadFromSqs", {})  # Beam's rule for Read* names
    assert write.requires_inputs("WriteToSqs", {})
    java_names = ["queue_url", "region", "max_num_records", "max_read_time_secs"]
    read_fields = {f.name: f for f in read.config_schema("ReadFromSqs").fields}
    assert set(java_names) | {"queue_name", "endpoint_url", "wait_time_seconds"} <= set(read_fields)
    write_fields = {f.name: f for f in write.config_schema("WriteToSqs").fields}
    assert {"message_group_id", "message_deduplication_id_field", "delay_seconds_field"} <= set(
        write_fields
    )
    for fields in (read_fields, write_fields):
        for name, field in fields.items():
            assert field.description, f"{name} is not documented"
            if name == "schema":  # a JSON schema: a map of str to JSON values
                assert field.type.map_type.key_type.atomic_type == schemas.schema_pb2.STRING
                continue
            # Plain types only: never Beam's "any Python object" logical type.
            assert "pythonsdk_any" not in str(field.type), name
        assert fields["error_handling"].type.WhichOneof("type_info") == "row_type"
    assert read_fields["max_num_records"].type.atomic_type == schemas.schema_pb2.INT64
    for cls in (YamlReadFromSqs, YamlWriteToSqs):
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
        assert all(p.name == p.name.lower() for p in parameters)
    assert read.description("ReadFromSqs").startswith("Reads messages from an Amazon SQS")


def field_names(row_type: Any) -> list[str]:
    return [f.name for f in schemas.schema_from_element_type(row_type).fields]


def test_read_row_schemas() -> None:
    metadata = [
        "message_id",
        "receipt_handle",
        "timestamp",
        "request_timestamp",
        "attributes",
        "message_group_id",
        "sequence_number",
        "receive_count",
        "payload_location",
    ]
    assert field_names(row_schema("STRING")) == ["body", *metadata]
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
    assert field_names(row_schema("json", schema)) == ["id", *metadata]
    fields = {f.name: f.type for f in schemas.schema_from_element_type(row_schema("RAW")).fields}
    assert fields["body"].atomic_type == schemas.schema_pb2.BYTES
    assert fields["attributes"].map_type.value_type.atomic_type == schemas.schema_pb2.STRING
    assert fields["timestamp"].atomic_type == schemas.schema_pb2.INT64
    assert fields["message_group_id"].nullable
    with pytest.raises(ValueError, match="needs a schema"):
        row_schema("JSON")
    with pytest.raises(ValueError, match="clash"):
        row_schema("JSON", {"type": "object", "properties": {"message_id": {"type": "string"}}})
    with pytest.raises(ValueError, match="format must be one of"):
        SqsMessagesToRows("AVRO")


def record(body: str, **attributes: str) -> dict[str, Any]:
    return {
        "MessageId": "m-1",
        "Body": body,
        "ReceiptHandle": "rh",
        "Attributes": {"SentTimestamp": "1700000000123", "ApproximateReceiveCount": "2"}
        | attributes,
        "MessageAttributes": {
            "s": {"DataType": "String", "StringValue": "text"},
            "n": {"DataType": "Number", "StringValue": "12.5"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    }


def rows_of(fn: _ToRowFn, message: dict[str, Any]) -> list[Any]:
    fn.setup()
    return list(fn.process(message))


def test_messages_become_rows_and_bad_bodies_error_rows() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
    fifo = record('{"id": 7}', MessageGroupId="g", SequenceNumber="42")
    [row] = rows_of(_ToRowFn("JSON", schema, "bad"), fifo)
    assert row.id == 7 and row.message_id == "m-1" and row.receipt_handle == "rh"
    assert row.timestamp == 1700000000123 and row.receive_count == 2
    assert row.attributes == {"s": "text", "n": "12.5", "b": "AP8="}  # Binary: base64
    assert (row.message_group_id, row.sequence_number) == ("g", "42")
    assert row.payload_location is None
    [raw] = rows_of(_ToRowFn("RAW", None, None), record("héllo"))
    assert raw.body == "héllo".encode() and raw.message_group_id is None
    [large] = rows_of(
        _ToRowFn("STRING", None, None), {**record("x"), "PayloadLocation": "s3://b/k"}
    )
    assert large.payload_location == "s3://b/k"  # a body that was stored in S3
    for bad in ("{oops", '{"id": "seven"}'):
        [error] = rows_of(_ToRowFn("JSON", schema, "bad"), record(bad))
        assert error.tag == "bad"
        assert error.value.element.body == bad and error.value.element.message_id == "m-1"
        assert error.value.msg and "Traceback" in error.value.stack
    with pytest.raises(json.JSONDecodeError):  # without an error output: fails the bundle
        rows_of(_ToRowFn("JSON", schema, None), record("{oops"))


def test_rows_become_entries() -> None:
    row = beam.Row(
        body="hi",
        n=3,
        message_group_id=None,
        attributes={"s": "x", "n": 2, "b": b"\x01"},
        group="g1",
        delay=5,
    )
    assert RowToEntry()(row) == {
        "MessageBody": "hi",
        "MessageAttributes": {
            "s": {"DataType": "String", "StringValue": "x"},
            "n": {"DataType": "Number", "StringValue": "2"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x01"},
        },
    }
    named = RowToEntry(message_group_id_field="group", delay_seconds_field="delay")(row)
    assert (named["MessageGroupId"], named["DelaySeconds"]) == ("g1", 5)
    as_json = RowToEntry("JSON")(beam.Row(a=1, b=beam.Row(c=b"\x01")))["MessageBody"]
    assert json.loads(as_json) == {"a": 1, "b": {"c": "AQ=="}}
    assert RowToEntry(body_field="n", message_group_id="all")(beam.Row(n="x")) == {
        "MessageBody": "x",
        "MessageGroupId": "all",
    }
    with pytest.raises(KeyError):  # a named field the row lacks: InvalidRecord in the sink
        RowToEntry(message_group_id_field="nope")(row)
    with pytest.raises(RuntimeError, match="InvalidMessageBody"):  # no error_handling
        list(_FailPipeline().process((row, {"Code": "InvalidMessageBody", "Message": "empty"})))


def test_secrets_in_config_reach_neither_annotations_nor_display_data() -> None:
    secret = "wJalrXUtnFEMI-K7MDENG"
    transform = YamlReadFromSqs(
        queue_url="http://127.0.0.1:1/1/q", max_num_records=1, aws_secret_access_key=secret
    )
    args = json.loads(transform.annotations()["yaml_args"])
    assert args["queue_url"] == "http://127.0.0.1:1/1/q"
    assert secret not in json.dumps(args) and args["aws_secret_access_key"].startswith("<secret")
    pipeline = beam.Pipeline(display_data={"yaml": f"aws_secret_access_key: {secret}"})
    _ = pipeline | transform
    assert secret not in json.dumps(pipeline.display_data())
    assert secret not in repr(pipeline.to_runner_api())


def expand(spec: str) -> None:
    """Build (not run) a YAML pipeline with the shipped listing."""
    with_providers = f"providers: [{{include: {LISTING}}}]\n" + spec
    with beam.Pipeline() as p:
        yaml_transform.expand_pipeline(p, with_providers)
        p.run = lambda *args, **kwargs: None  # type: ignore[method-assign]


def test_unconsumed_error_output_and_unknown_config_fail_construction() -> None:
    unconsumed = """
pipeline:
  transforms:
    - type: ReadFromSqs
      config: {queue_url: "http://127.0.0.1:1/1/q", until_empty: true, format: JSON,
               schema: {type: object}, error_handling: {output: bad}}
    - {type: LogForTesting, input: ReadFromSqs}
"""
    with pytest.raises(ValueError, match="Unconsumed error output"):
        expand(unconsumed)
    with pytest.raises(ValueError, match="max_num_record"):
        expand(
            """
pipeline:
  transforms:
    - {type: ReadFromSqs, config: {queue_url: "http://127.0.0.1:1/1/q", max_num_record: 1}}
    - {type: LogForTesting, input: ReadFromSqs}
"""
        )


def test_rows_without_the_body_field_fail_construction() -> None:
    spec = """
pipeline:
  transforms:
    - type: Create
      config: {elements: [{text: a}]}
    - type: WriteToSqs
      input: Create
      config: {queue_url: "http://127.0.0.1:1/1/q"%s}
"""
    with pytest.raises(ValueError, match="the rows have no field 'body'"):
        expand(spec % "")
    with pytest.raises(ValueError, match="the rows have no field 'group'"):
        expand(spec % ", body_field: text, message_group_id_field: group")


def test_a_yaml_read_can_delete_on_output_for_runners_that_never_finalize() -> None:
    read = YamlReadFromSqs(queue_url="http://127.0.0.1:1/1/q", delete_after="output")
    assert read._read._read.delete_after == "output"  # handed to ReadFromSqs
    with pytest.raises(ValueError, match='delete_after must be "commit" or "output"'):
        YamlReadFromSqs(queue_url="http://127.0.0.1:1/1/q", delete_after="later")


def test_the_examples_own_yaml_tests_pass() -> None:
    yaml_main.run_tests(
        [f"--yaml_pipeline_file={EXAMPLE}", "--tests", "--runner=FnApiRunner"], exit=False
    )


@pytest.mark.integration
def test_yaml_pipeline_routes_every_message_as_the_readme_runs_it(
    server: LocalSqsServer,
    sync_client: Any,
    loopback_grpc: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 orders arrive upper-cased; 10 malformed bodies and 5 empty texts (an empty body,
    which SQS refuses) arrive in the dead-letter queue as error rows; the source is empty."""
    [command] = re.findall(r"^python -m apache_beam\.yaml\.main .*$", SECTION, flags=re.MULTILINE)
    [local] = re.findall(r"^sqs-async local --port 9324 (--queue .*) --detach", SECTION, re.M)
    names = shlex.split(local)[1::2]
    assert names == ["orders", "shouted", "dead-letters"]
    urls = {name: sync_client.create_queue(QueueName=name)["QueueUrl"] for name in names}
    good = [json.dumps({"id": i, "text": f"order {i}"}) for i in range(200)]
    malformed = [f"{{oops {i}" for i in range(5)] + [json.dumps({"id": f"x{i}"}) for i in range(5)]
    empty = [json.dumps({"id": 1000 + i, "text": ""}) for i in range(5)]
    bodies = good + malformed + empty
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])
        ]
        assert not sync_client.send_message_batch(QueueUrl=urls["orders"], Entries=entries).get(
            "Failed"
        )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # as the README's `export`
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    argv = shlex.split(command.replace("http://127.0.0.1:9324", server.endpoint_url))[3:]
    monkeypatch.chdir(ROOT)
    yaml_main.run(argv)

    shouted = sorted(m["Body"] for m in drain(sync_client, urls["shouted"]))
    assert shouted == sorted(f"ORDER {i}" for i in range(200))
    dead = [json.loads(m["Body"]) for m in drain(sync_client, urls["dead-letters"])]
    assert all(set(d) == {"element", "msg", "stack"} for d in dead)
    unparsed = [d for d in dead if "body" in d["element"] and "id" not in d["element"]]
    assert sorted(d["element"]["body"] for d in unparsed) == sorted(malformed)
    assert all(d["msg"] and "Traceback" in d["stack"] for d in unparsed)
    refused = [d for d in dead if "id" in d["element"]]
    assert sorted(d["element"]["id"] for d in refused) == [1000 + i for i in range(5)]
    assert all(d["msg"].startswith("InvalidMessageBody: ") for d in refused)
    assert len(dead) == 15
    assert queue_counts(sync_client, urls["orders"]) == (0, 0)  # bad bodies deleted too


def test_a_schemad_row_is_one_message() -> None:
    from beam_adapter.sink import records_of

    row = beam.Row(body="a", id=1)
    as_decoded = row_schema("STRING")(**{name: None for name in field_names(row_schema())})
    assert records_of(row) == [row]
    assert records_of(as_decoded) == [as_decoded]  # a NamedTuple, not a list of fields
    assert records_of(("k", ["a", "b"])) == ["a", "b"]  # GroupIntoBatches pairs, as before


@pytest.mark.integration
def test_python_api_reads_rows_and_writes_rows(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    """`ReadFromSqs(format="JSON", schema=..., error_output=...)` and `WriteToSqs` with a
    `RowToEntry` serializer: the same rows as Beam YAML's, from Python."""
    from apache_beam.testing.util import assert_that, equal_to

    from beam_adapter import ReadFromSqs, WriteToSqs

    from .conftest import make_queue, options

    target = make_queue(sync_client)
    for body in ['{"id": 1, "text": "a"}', '{"id": 2, "text": "b"}', "not json"]:
        sync_client.send_message(QueueUrl=queue_url, MessageBody=body)
    schema = {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "text": {"type": "string"}},
    }
    with beam.Pipeline(options=options(server)) as p:
        read = p | ReadFromSqs(
            queue_url=queue_url,
            max_messages=3,
            wait_time_seconds=1,
            format="JSON",
            schema=schema,
            error_output="unparsed",
        )
        assert field_names(read["main"].element_type)[:2] == ["id", "text"]
        shouted = read["main"] | beam.Map(
            lambda row: beam.Row(body=row.text.upper(), id=row.id, receive_count=row.receive_count)
        )
        _ = shouted | WriteToSqs(queue_url=target, serializer=RowToEntry())
        assert_that(
            read["unparsed"] | beam.Map(lambda error: error.element.body),
            equal_to(["not json"]),
        )
    assert sorted(m["Body"] for m in drain(sync_client, target)) == ["A", "B"]
    assert queue_counts(sync_client, queue_url) == (0, 0)  # all three deleted
