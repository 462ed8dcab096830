"""The sqs_pyio contender, run by the interpreter of its own virtual environment.

Standalone on purpose (sqs-pyio==0.1.0 pins urllib3<2 and Python<3.13, and must not see this
project): the pipeline shape of its documentation, `Create | BatchElements(10) | WriteToSqs`.
Usage: python pyio_contender.py '<json job>'; prints a JSON result.
"""

import json
import resource
import sys
import time

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.util import BatchElements
from sqs_pyio.io import WriteToSqs


def main(job):
    records = []
    for i in range(job["messages"]):
        head = f"{i:09d}:"
        body = head + "x" * max(1, job["body_bytes"] - len(head))
        records.append({"Id": str(i), "MessageBody": body})
    options = PipelineOptions(
        [
            "--runner=FnApiRunner",
            f"--endpoint_url={job['endpoint']}",
            "--region_name=us-east-1",
            "--aws_access_key_id=bench",
            "--aws_secret_access_key=bench",
        ]
    )
    cpu, wall = time.process_time(), time.perf_counter()
    pipeline = beam.Pipeline(options=options)
    _ = (
        pipeline
        | beam.Create(records)
        | BatchElements(min_batch_size=10, max_batch_size=10)
        | WriteToSqs(queue_name=job["queue"], max_trials=job["max_trials"])
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]
    }
    return {
        "seconds": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "delivered": counters.get("succeeded_elements_count", 0),
        "failed": counters.get("failed_elements_count", 0),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
