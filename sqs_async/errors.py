"""Exceptions raised by sqs_async.

Per-message problems are never raised: they come back as `Failed` results. Exceptions are for
conditions under which no message of the send can succeed::

    SqsAsyncError               base of everything raised here; `.retryable` says if trying
     |                          the same call again later can help
     +-- SqsClientError         the queue rejects every request: it does not exist, access is
     |                          denied, credentials are missing or wrong (`.code` holds the
     |                          AWS error code); retrying will not help
     +-- SqsUnavailableError    SQS could not be reached for a call the sender cannot do
     |                          without (resolving a queue name), after every attempt;
     |                          retrying later may help
     +-- ProducerFull           `SqsProducer.put_nowait` found no room; retry after some
                                messages resolve

Bad configuration raises the standard `ValueError` / `TypeError` at construction.

The codes below are those of `Failed` results the engine gives itself; a message that SQS
refused carries SQS's own code (`InternalError`, `KMS.ThrottlingException`, ...).
"""

from __future__ import annotations


class SqsAsyncError(Exception):
    """Base class for errors raised by sqs_async.

    `SqsAsyncError(message=None, code=None)`, as `sqs_pyio`'s `SqsClientError`: `.message` is
    the text, `.code` the AWS error code (sqs_pyio put the HTTP status there: it is
    `.http_status` here). `str()` is the message, or the code when there is none.
    """

    retryable: bool = False

    def __init__(
        self, message: str | None = None, code: str | None = None, http_status: int | None = None
    ) -> None:
        # All three in `args`: pickling (to and from Beam workers) and Beam's re-raise with the
        # step's name (`type(e)(args[0] + note, *args[1:])`) rebuild the error from them.
        super().__init__(message, code, http_status)
        self.message = message
        self.code = code
        self.http_status = http_status

    def __str__(self) -> str:
        return self.message if self.message is not None else (self.code or type(self).__name__)


class SqsClientError(SqsAsyncError):
    """A request that can never succeed for this queue; retrying will not help."""

    retryable = False


class SqsUnavailableError(SqsAsyncError):
    """SQS stayed unreachable or overloaded through every attempt; try again later."""

    retryable = True


class ProducerFull(SqsAsyncError):
    """`put_nowait` found `max_buffered` messages waiting; retry after some resolve."""

    retryable = True


# Refused by validation, before any request (the message can never be accepted as it is).
INVALID_RECORD = "InvalidRecord"  # a record function failed, or the record is no message
INVALID_BODY = "InvalidMessageBody"
INVALID_CHARACTERS = "InvalidMessageContents"
MESSAGE_TOO_LONG = "MessageTooLong"
INVALID_ATTRIBUTES = "InvalidMessageAttributes"
INVALID_DELAY = "InvalidDelaySeconds"
INVALID_FIFO_FIELDS = "InvalidFifoFields"
# An entry SQS listed neither as successful nor as failed (retried like a transient failure).
MISSING_RESULT = "MissingResult"
# Not sent, or not confirmed, before the send's deadline.
DEADLINE_EXCEEDED = "DeadlineExceeded"
# Not sent: an earlier message of its FIFO group failed, and sending it would break the order.
PRECEDING_MESSAGE_FAILED = "PrecedingMessageFailed"
# The producer closed before SQS confirmed the message (it may or may not have been delivered).
CLOSED_BEFORE_CONFIRMATION = "ClosedBeforeConfirmation"


# What each SQS call needs: the hint of an access error names the permission.
_PERMISSION = {
    "send": "sqs:SendMessage (and sqs:GetQueueUrl for a queue name)",
    "receive": "sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility (and "
    "sqs:GetQueueUrl for a queue name)",
}
# The credentials were refused (retry.py counts them among the codes that fail every request).
CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidSecurity",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
_NO_QUEUE = "check the queue name or URL, the region and the endpoint"
_CREDENTIALS = "check the credentials: the server did not accept them"
_HINTS = {
    "AWS.SimpleQueueService.NonExistentQueue": _NO_QUEUE,
    "QueueDoesNotExist": _NO_QUEUE,
    "NoCredentialsError": "no AWS credentials were found: configure the standard AWS chain "
    "(environment, ~/.aws, instance or task role) or pass them explicitly",
    "NoRegionError": "no AWS region was found: set region_name or AWS_DEFAULT_REGION",
    **dict.fromkeys(CREDENTIAL_CODES, _CREDENTIALS),
}
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
# No answer came back (botocore's exception names): the request never reached a server.
_UNREACHED = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ProxyConnectionError",
        "SSLError",
        "HTTPClientError",
    }
)


def refusal(
    exc: BaseException,
    code: str,
    queue: str,
    *,
    work: str = "send",
    retryable: bool = False,
) -> SqsAsyncError:
    """The error to raise when `queue` refused a call with `exc` (AWS error code `code`);
    `work` ("send" or "receive") says which permissions an access error points to."""
    kind = SqsUnavailableError if retryable else SqsClientError
    response = getattr(exc, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if response else None
    return kind(explain(code, str(exc), queue, work=work, status=status), code, status)


def explain(
    code: str, detail: str, queue: str, *, work: str = "send", status: int | None = None
) -> str:
    """A message a person can act on for a failure that affects the whole queue; `status`
    is the HTTP status of the answer, None when there was none."""
    if code in _ACCESS_DENIED:
        hint = f"the credentials in use need {_PERMISSION[work]} on this queue"
    elif code in _HINTS:
        hint = _HINTS[code]
    elif code in _UNREACHED:
        hint = "no answer from the endpoint: check its URL, and that the server is running"
    elif status is not None and status >= 500:
        hint = f"the server failed (HTTP {status}): try again later"
    elif status is not None:
        hint = (
            f"the server refused the request (HTTP {status}): check that the endpoint is an "
            "SQS endpoint, and the queue URL"
        )
    else:
        hint = "check the endpoint, the region and the queue"
    detail = detail.replace(" (reached max retries: 0)", "")  # botocore's retries are off
    return f"SQS refused requests to {queue}: {code}: {detail} ({hint})"
