"""Arbitrary input never crashes or hangs the engine or the Beam adapter: every record ends
delivered or failed with a reason, and every well-formed one is delivered."""

from __future__ import annotations

import asyncio
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_adapter import METRICS_NAMESPACE, WriteToSqs
from sqs_async import Delivered, SqsSender
from sqs_async.send._validation import ENTRY_FIELDS

from .conftest import LOCAL_RUNNER
from .faults import StubClient, accept_all

ODD_CHARACTERS = ["a", "é", "\x00", "\ufffe", "\uffff", "\t", "😀", " "]
SURROGATE = "\ud800"  # a lone surrogate: Python allows it in str, UTF-8 does not
ODD_TEXT = st.text(alphabet=st.sampled_from([*ODD_CHARACTERS, SURROGATE]), max_size=20)
# Beam's coders encode str as UTF-8, so a lone surrogate cannot even enter a PCollection.
BEAM_ODD_TEXT = st.text(alphabet=st.sampled_from(ODD_CHARACTERS), max_size=20)
GOOD_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters=("\ufffe", "\uffff")
    ),
    min_size=1,
    max_size=30,
)


def values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Arbitrary nested Python values, with entry-like dicts among them."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.binary(max_size=10),
        text,
        st.just("x" * 1_100_000),  # larger than SQS allows
    )
    keys = st.sampled_from([*ENTRY_FIELDS, "Other"]) | text
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=8,
    )


VALUES = values(ODD_TEXT)
BEAM_VALUES = values(BEAM_ODD_TEXT)
GOOD = st.one_of(GOOD_TEXT, GOOD_TEXT.map(lambda body: {"Id": "any", "MessageBody": body}))


class AcceptAll(StubClient):
    """Accepts every entry at once: the fuzz is about input, not the server."""

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        return accept_all(kwargs["Entries"])


def wrap_with_accept_all(_: Any) -> AcceptAll:
    return AcceptAll()


@settings(max_examples=100, deadline=None)
@given(bad=st.lists(VALUES, max_size=15), good=st.lists(GOOD, max_size=15), data=st.data())
def test_engine_accounts_for_arbitrary_input(bad: list[Any], good: list[Any], data: Any) -> None:
    records = data.draw(st.permutations(bad + good))

    async def send() -> Any:
        async with SqsSender(queue_url="https://sqs.test/1/q", client=AcceptAll()) as sender:
            async with asyncio.timeout(30):
                return await sender.send(records)

    result = asyncio.run(send())
    assert sorted(o.index for o in [*result.delivered, *result.failed]) == list(range(len(records)))
    assert all(f.code and f.message for f in result.failed)
    delivered = {id(d.record) for d in result.delivered}
    assert all(id(g) in delivered for g in good), "a well-formed message was not delivered"
    assert all(isinstance(d, Delivered) for d in result.delivered)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    elements=st.lists(BEAM_VALUES | st.lists(BEAM_VALUES, max_size=12), min_size=1, max_size=6),
    good=st.lists(GOOD, max_size=5),
)
def test_beam_adapter_accounts_for_arbitrary_elements(elements: list[Any], good: list[Any]) -> None:
    records = [r for e in elements for r in (e if isinstance(e, list) else [e])]
    options = PipelineOptions(
        [
            "--region_name=us-east-1",
            "--aws_access_key_id=x",
            "--aws_secret_access_key=y",
            LOCAL_RUNNER,
        ]
    )
    pipeline = beam.Pipeline(options=options)
    output = (
        pipeline
        | beam.Create([[*elements, *good]], reshuffle=False)
        | beam.FlatMap(lambda batch: batch)
        | WriteToSqs(queue_url="https://sqs.test/1/q", client_wrapper=wrap_with_accept_all)
    )
    _ = output[WriteToSqs.FAILED_OUTPUT] | beam.Map(lambda record: None)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))[
            "counters"
        ]
    }
    sent, failed = counters.get("messages_sent", 0), counters.get("messages_failed", 0)
    assert sent + failed == len(records) + len(good)
    assert sent >= len(good)
