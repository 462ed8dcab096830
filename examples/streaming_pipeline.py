"""A streaming pipeline: read a queue without end, transform, write to another queue. Each
message is deleted from the source once the bundle that read it is committed.

Locally, with a server started by `sqs-async local --port 9324 --queue orders --queue shouted`:

    python examples/streaming_pipeline.py --source orders --target shouted \\
        --endpoint_url=http://127.0.0.1:9324 --region_name=us-east-1 \\
        --aws_access_key_id=testing --aws_secret_access_key=testing --runner=FnApiRunner

Runs until stopped (Ctrl-C). On this machine it is exercised on the FnApiRunner, which runs
the unbounded read as a loop of checkpointed bundles.
"""

from __future__ import annotations

import argparse

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_adapter import ReadFromSqs, WriteToSqs


def run(pipeline_args: list[str], source: str, target: str) -> None:
    with beam.Pipeline(options=PipelineOptions(pipeline_args)) as p:
        (
            p
            | "Read" >> ReadFromSqs(queue_name=source)  # unbounded: no limit given
            | "Shout" >> beam.Map(lambda message: message["Body"].upper())
            | "Write" >> WriteToSqs(queue_name=target)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="queue to read")
    parser.add_argument("--target", required=True, help="queue to write")
    known, pipeline_args = parser.parse_known_args()
    run(pipeline_args, known.source, known.target)


if __name__ == "__main__":
    main()
