"""The lean wire path: the engine's hot batch calls built as the AWS JSON protocol defines
them, signed by botocore's own SigV4 signer, sent on aiobotocore's connection pool.

Why: once requests overlap, CPU per request decides the engine's throughput, and most of
botocore's is generic machinery (parameter handling, serializer, event hooks, user agent,
response parser), not the work a SendMessageBatch needs.

What stays aiobotocore's: the session, credentials and their refresh (the client's signer
hands out frozen credentials for each request), region and endpoint (botocore's endpoint
rules, resolved once per operation), TLS settings, proxies and timeouts (the client's HTTP
session sends the request and maps connection errors), and every error: an answer that is
not a success is parsed by the client's own parser, goes through the client's after-call
handlers and is raised as the client's own exception, so retries, throttling detection and
fatal codes see exactly what they see on the botocore path. `tests/test_wire.py` proves the
requests equal aiobotocore's and the errors equal botocore's.

The body is the JSON document botocore would send, written by orjson: compact and in UTF-8
where botocore (`json.dumps`) puts spaces and `\\u` escapes, so the bytes differ while the
document is the same; 30 to 50 times faster, which is what decides 64 KiB messages. The
signature is botocore's, over these bytes.

`LeanSqsClient` wraps an aiobotocore SQS client: its three batch calls (their requests and
successful answers are flat JSON) go the lean way, every other attribute is the client's.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiobotocore.client import AioBaseClient
from aiobotocore.endpoint import convert_to_response_dict
from botocore.awsrequest import AWSRequest, prepare_request_dict


def on_wire(client: Any, wire: str) -> Any:
    """`client` with its hot calls on the lean path when `wire` is "lean" and it is an
    aiobotocore SQS client that signs with SigV4; otherwise `client` as it is (a test double,
    a wrapper, an unsigned client)."""
    if wire == "lean" and can_go_lean(client):
        return LeanSqsClient(client)
    return client


def can_go_lean(client: Any) -> bool:
    """Whether `client` is an aiobotocore SQS client speaking JSON and signing with SigV4,
    with the parts the lean path uses (an aiobotocore release without them goes its own
    way)."""
    if not isinstance(client, AioBaseClient) or not all(
        hasattr(client, part)
        for part in (
            "_resolve_endpoint_ruleset",
            "_serializer",
            "_user_agent_creator",
            "_response_parser",
            "_endpoint",
            "_request_signer",
        )
    ):
        return False
    service_model = client.meta.service_model
    return bool(
        service_model.service_name == "sqs"
        and service_model.protocol == "json"
        and client._request_signer._signature_version == "v4"
    )


def _to_json(value: Any) -> Any:
    """What botocore's JSON serializer makes of a blob (base64 text) or a mapping that is not
    a dict."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).strip().decode("utf-8")
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} cannot be sent to SQS")


class _Request(AWSRequest):  # type: ignore[misc]  # botocore ships no types
    """botocore's request with its body already bytes: `AWSRequest.body` prepares the whole
    request again on every read (the signer reads it to hash the payload), and for a bytes
    body what it returns is that body."""

    @property
    def body(self) -> bytes:
        data: bytes = self.data
        return data


@dataclass(frozen=True)
class _Operation:
    """What a call needs that does not change between requests."""

    name: str
    model: Any
    url: str
    headers: dict[str, str]
    signing_name: str
    signing_region: str


class LeanSqsClient:
    """An aiobotocore SQS client whose hot batch calls take the lean wire path."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._operations: dict[str, _Operation] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def send_message_batch(self, **params: Any) -> dict[str, Any]:
        return await self._call("SendMessageBatch", params)

    async def delete_message_batch(self, **params: Any) -> dict[str, Any]:
        return await self._call("DeleteMessageBatch", params)

    async def change_message_visibility_batch(self, **params: Any) -> dict[str, Any]:
        return await self._call("ChangeMessageVisibilityBatch", params)

    async def _call(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        operation = self._operations.get(name) or await self._prepare(name, params)
        body = orjson.dumps(params, default=_to_json)
        request = _Request(
            method="POST", url=operation.url, data=body, headers=dict(operation.headers)
        )
        signer = self._client._request_signer
        auth = await signer.get_auth_instance(
            operation.signing_name, operation.signing_region, signer._signature_version
        )
        auth.add_auth(request)
        response = await self._client._endpoint.http_session.send(request.prepare())
        status = response.status_code
        if status >= 300:
            raise await self._error(operation, response)
        try:
            parsed = orjson.loads(await response.content)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):  # what botocore makes of it, however odd
            return await self._parsed(operation, response)
        parsed["ResponseMetadata"] = {
            "RequestId": response.headers.get("x-amzn-requestid"),
            "HTTPStatusCode": status,
            "HTTPHeaders": response.headers,
            "RetryAttempts": 0,
        }
        return parsed

    async def _parsed(self, operation: _Operation, response: Any) -> dict[str, Any]:
        """The answer as the client's own parser reads it."""
        response_dict = await convert_to_response_dict(response, operation.model)
        parsed: dict[str, Any] = await self._client._response_parser.parse(
            response_dict, operation.model.output_shape
        )
        return parsed

    async def _error(self, operation: _Operation, response: Any) -> Exception:
        """The exception botocore raises for this answer: its parser, its after-call
        handlers (SQS's picks the exception by its query error code), its error factory."""
        client = self._client
        parsed = await self._parsed(operation, response)
        context: dict[str, Any] = {}
        service_id = client.meta.service_model.service_id.hyphenize()
        await client.meta.events.emit(
            f"after-call.{service_id}.{operation.name}",
            http_response=response,
            parsed=parsed,
            model=operation.model,
            context=context,
        )
        code = context.get("error_code_override") or parsed.get("Error", {}).get("Code")
        error: Exception = client.exceptions.from_code(code)(parsed, operation.name)
        return error

    async def _prepare(self, name: str, params: dict[str, Any]) -> _Operation:
        """Resolve what botocore resolves per call: endpoint (its ruleset), signing name and
        region, the URL and the headers of every request (user agent included)."""
        client = self._client
        model = client.meta.service_model.operation_model(name)
        context: dict[str, Any] = {
            "client_region": client.meta.region_name,
            "client_config": client.meta.config,
            "has_streaming_input": False,
            "auth_type": model.resolved_auth_type,
        }
        endpoint_url, extra_headers, _ = await client._resolve_endpoint_ruleset(
            model, params, context
        )
        request_dict = client._serializer.serialize_to_request(params, model)
        request_dict["headers"].update(extra_headers)
        prepare_request_dict(
            request_dict,
            endpoint_url=endpoint_url,
            user_agent=client._user_agent_creator.to_string(),
            context=context,
        )
        signing = context.get("signing", {})
        operation = _Operation(
            name=name,
            model=model,
            url=request_dict["url"],
            headers=dict(request_dict["headers"]),
            signing_name=signing.get("signing_name") or client._request_signer._signing_name,
            signing_region=signing.get("region") or client._request_signer._region_name,
        )
        self._operations[name] = operation
        return operation
