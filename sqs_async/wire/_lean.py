"""The lean wire path: the engine's hot calls built as the AWS JSON protocol defines
them, signed by botocore's own SigV4 signer, sent on aiobotocore's connection pool.

Why: once requests overlap, CPU per request decides the engine's throughput, and most of
botocore's is generic machinery (parameter handling, serializer, event hooks, user agent,
response parser, and the HTTP session's per-request set-up), not the work a
SendMessageBatch needs.

What stays aiobotocore's: the session, credentials and their refresh (the client's signer
hands out frozen credentials for each request), region and endpoint (botocore's endpoint
rules, resolved once per operation), the HTTP session's aiohttp pool with its TLS settings,
timeouts and proxies (the proxy for an operation's URL is looked up once, as the session
looks it up), and every error: an answer that is not a success is parsed by the client's own
parser, goes through the client's after-call handlers and is raised as the client's own
exception; a request that gets no answer raises the botocore exception aiobotocore's HTTP
session maps it to (`transport_error`). So retries, throttling detection and fatal codes see
exactly what they see on the botocore path. `tests/test_wire.py` proves the requests equal
aiobotocore's and the errors equal botocore's.

The body is the JSON document botocore would send, written by orjson: compact and in UTF-8
where botocore (`json.dumps`) puts spaces and `\\u` escapes, so the bytes differ while the
document is the same; 30 to 50 times faster, which is what decides 64 KiB messages. The
signature is botocore's, over these bytes.

`LeanSqsClient` wraps an aiobotocore SQS client: its three batch calls and `ReceiveMessage`
go the lean way, every other attribute is the client's. A successful answer is read as the
JSON it is, with what botocore's parser converts converted the same way: the blobs of
`ReceiveMessage`'s binary attributes decoded from base64 (`_decoder`, made once per
operation from its output shape). An answer shaped otherwise is read by the client's parser.
Two differences are left, for answers SQS does not give: botocore drops a member whose value
is JSON's null and a key its model does not know; the lean path keeps them.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp
import orjson
from aiobotocore.awsrequest import AioAWSResponse
from aiobotocore.client import AioBaseClient
from aiobotocore.endpoint import convert_to_response_dict
from aiobotocore.httpsession import AIOHTTPSession
from botocore.auth import _host_from_url
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, prepare_request_dict
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import mask_proxy_url
from botocore.utils import ensure_boolean
from multidict import CIMultiDict
from yarl import URL


def on_wire(client: Any, wire: str) -> Any:
    """`client` with its hot calls on the lean path when `wire` is "lean" and it is an
    aiobotocore SQS client that signs with SigV4 and sends with aiohttp; otherwise `client`
    as it is (a test double, a wrapper, an unsigned client, another HTTP client)."""
    if wire == "lean" and can_go_lean(client):
        return LeanSqsClient(client)
    return client


def can_go_lean(client: Any) -> bool:
    """Whether `client` is an aiobotocore SQS client speaking JSON, signing with SigV4 and
    sending with aiobotocore's aiohttp session, with the parts the lean path uses (an
    aiobotocore release without them goes its own way)."""
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
    http = client._endpoint.http_session
    if type(http) is not AIOHTTPSession or not all(
        hasattr(http, part) for part in ("_get_session", "_proxy_config")
    ):
        return False  # another HTTP client (httpx, a subclass): the client's own path
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
    body what it returns is that body. Its headers are the case-insensitive mapping aiohttp
    sends (botocore's `HTTPHeaders` is an email message, parsed again on every read): the
    signer only tests, reads, deletes and sets them, deleting before it sets."""

    def __init__(self, *, url: str, data: bytes, headers: Mapping[str, str]) -> None:
        super().__init__(method="POST", url=url, data=data)
        self.headers: CIMultiDict[str] = CIMultiDict(headers)

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
    target: URL  # the URL as aiohttp takes it (already encoded)
    headers: dict[str, str]
    signing_name: str
    signing_region: str
    proxy_url: str | None
    proxy_headers: dict[str, str]
    # How a success's JSON becomes what botocore's parser makes of it (see `_decoder`):
    # a function (`_as_it_is` when nothing is converted), or None (the parser reads it).
    decode: Decode | None


class LeanSqsClient:
    """An aiobotocore SQS client whose hot calls take the lean wire path."""

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

    async def receive_message(self, **params: Any) -> dict[str, Any]:
        return await self._call("ReceiveMessage", params)

    async def _call(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        operation = self._operations.get(name) or await self._prepare(name, params)
        body = orjson.dumps(params, default=_to_json)
        request = _Request(url=operation.url, data=body, headers=operation.headers)
        signer = self._client._request_signer
        auth = await signer.get_auth_instance(
            operation.signing_name, operation.signing_region, signer._signature_version
        )
        auth.add_auth(request)
        headers = request.headers
        headers["Accept-Encoding"] = "identity"  # as aiobotocore: botocore/botocore#1255
        response, content, response_headers = await self._send(operation, headers, body)
        status = response.status
        if status < 300 and operation.decode is not None:
            try:
                parsed = operation.decode(orjson.loads(content))
            except (ValueError, TypeError, AttributeError):  # JSON, base64 (and binascii's)
                parsed = None  # not the answer its shape says: botocore's parser reads it
            if isinstance(parsed, dict):
                parsed["ResponseMetadata"] = {
                    "RequestId": response_headers.get("x-amzn-requestid"),
                    "HTTPStatusCode": status,
                    "HTTPHeaders": response_headers,
                    "RetryAttempts": 0,
                }
                return parsed
        # Not a success, an answer shaped for the parser, or a success body that is not the
        # JSON object its shape says: botocore reads it.
        answer = AioAWSResponse(str(response.url), status, response_headers, response)
        if status >= 300:
            raise await self._error(operation, answer)
        return await self._parsed(operation, answer)

    async def _send(
        self, operation: _Operation, headers: CIMultiDict[str], body: bytes
    ) -> tuple[aiohttp.ClientResponse, bytes, dict[str, str]]:
        """The request on the aiohttp session aiobotocore's HTTP session keeps for this
        proxy (its pool, TLS context and timeouts): what `AIOHTTPSession.send` does with it,
        less the look-ups that do not change between requests. The answer is read whole, as
        aiobotocore reads it; a request that gets none raises botocore's exception."""
        http = self._client._endpoint.http_session
        try:
            session = await http._get_session(operation.proxy_url)
            response = await session.request(
                "POST",
                url=operation.target,
                headers=headers,
                data=body,
                proxy=operation.proxy_url,
                proxy_headers=operation.proxy_headers,
            )
            # botocore reads header names in lower case (aiobotocore: the same).
            response_headers = {
                name.decode("utf-8").lower(): value.decode("utf-8")
                for name, value in response.raw_headers
            }
            return response, await response.read(), response_headers
        except concurrent.futures.CancelledError:
            raise  # as aiobotocore: not a failure of the request
        except Exception as error:
            raise transport_error(
                error, operation.url, operation.proxy_url, headers, body
            ) from error

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
        url = request_dict["url"]
        proxies = client._endpoint.http_session._proxy_config
        proxy_headers = proxies.proxy_headers_for(url)  # sic: aiobotocore passes the URL
        if ensure_boolean(os.environ.get("BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER", "")):
            proxy_headers["host"] = urlparse(url).hostname
        operation = _Operation(
            name=name,
            model=model,
            url=url,
            target=URL(url, encoded=True),
            # The Host header botocore's signer signs, set here rather than derived from the
            # URL on every request (botocore's own to-do); aiohttp sends it as it is.
            headers={**request_dict["headers"], "host": _host_from_url(url)},
            signing_name=signing.get("signing_name") or client._request_signer._signing_name,
            signing_region=signing.get("region") or client._request_signer._region_name,
            proxy_url=proxies.proxy_url_for(url),
            proxy_headers=proxy_headers,
            decode=_answer_decoder(model.output_shape),
        )
        self._operations[name] = operation
        return operation


Decode = Callable[[Any], Any]


def _as_it_is(value: Any) -> Any:
    return value


def _from_base64(value: str) -> bytes:
    return base64.b64decode(value)  # as botocore's `_default_blob_parser`


class _ParserNeeded(Exception):
    """A shape whose answers the lean path leaves to botocore's parser."""


def _answer_decoder(shape: Any) -> Decode | None:
    """How a success's JSON (an object) becomes what botocore's parser makes of it, or None
    when the parser must read it (see `_decoder`)."""
    try:
        return _decoder(shape) or _as_it_is
    except _ParserNeeded:
        return None


def _decoder(shape: Any, seen: frozenset[str] = frozenset()) -> Decode | None:
    """What botocore's JSON parser does to a value of `shape`: nothing (None), or decode the
    blobs within it from base64 (the function returned). Raises `_ParserNeeded` where it does
    more: a timestamp, a member named otherwise on the wire, a recursive shape."""
    if shape is None:
        return None
    kind = shape.type_name
    if kind == "timestamp" or (kind in ("structure", "list", "map") and shape.name in seen):
        raise _ParserNeeded(shape.name)
    seen |= {shape.name}
    if kind == "blob":
        return _from_base64
    if kind == "structure":
        members: dict[str, Decode] = {}
        for name, member in shape.members.items():
            if member.serialization.get("name", name) != name:
                raise _ParserNeeded(name)
            if (decode := _decoder(member, seen)) is not None:
                members[name] = decode
        return _structure(members) if members else None
    if kind == "list" and (item := _decoder(shape.member, seen)) is not None:
        return lambda values: [item(value) for value in values]
    if kind == "map" and (entry := _decoder(shape.value, seen)) is not None:
        return lambda values: {key: entry(value) for key, value in values.items()}
    return None


def _structure(members: dict[str, Decode]) -> Decode:
    def decode(value: dict[str, Any]) -> dict[str, Any]:
        for name, decode_member in members.items():
            if (member := value.get(name)) is not None:
                value[name] = decode_member(member)
        return value

    return decode


def transport_error(
    error: Exception, url: str, proxy_url: str | None, headers: Any, body: bytes
) -> Exception:
    """The botocore exception aiobotocore's HTTP session raises when a request gets no answer
    (`AIOHTTPSession.send`'s mapping, in its order; `tests/test_wire.py` holds the two
    alike for every fault a loopback server can cause)."""
    failure: Exception  # botocore's exceptions are untyped
    match error:
        case aiohttp.ClientSSLError():
            failure = SSLError(endpoint_url=url, error=error)
        case aiohttp.ClientProxyConnectionError() | aiohttp.ClientHttpProxyError():
            failure = ProxyConnectionError(proxy_url=mask_proxy_url(proxy_url), error=error)
        case (
            aiohttp.ServerDisconnectedError()
            | aiohttp.ClientPayloadError()
            | aiohttp.http_exceptions.BadStatusLine()
        ):
            request = AWSPreparedRequest("POST", url, headers, body, False)
            failure = ConnectionClosedError(error=error, request=request, endpoint_url=url)
        case aiohttp.ServerTimeoutError() if str(error).lower().startswith("connect"):
            failure = ConnectTimeoutError(endpoint_url=url, error=error)
        case aiohttp.ServerTimeoutError():
            failure = ReadTimeoutError(endpoint_url=url, error=error)
        case aiohttp.ClientConnectorError() | aiohttp.ClientConnectionError() | socket.gaierror():
            failure = EndpointConnectionError(endpoint_url=url, error=error)
        case asyncio.TimeoutError():
            failure = ReadTimeoutError(endpoint_url=url, error=error)
        case _:
            failure = HTTPClientError(error=error)
    return failure
