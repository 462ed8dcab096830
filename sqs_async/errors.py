"""Exceptions raised by sqs_async.

Per-message problems are never raised: they come back as `Failed` results. Exceptions are for
conditions under which no message of the send can succeed::

    SqsAsyncError               base of everything raised here; `.retryable` says if trying
     |                          the same call again later can help
     +-- SqsClientError         the queue rejects every request: it does not exist, access is
     |                          denied, credentials are missing or wrong (`.code` holds the
     |                          AWS error code); retrying will not help
     +-- SqsUnavailableError    SQS could not be reached for a call the engine cannot do
     |                          without (resolving a queue name), after every attempt;
     |                          retrying later may help
     +-- ProducerFull           `SqsProducer.put_nowait` found no room; retry after some
                                messages resolve

Bad configuration raises the standard `ValueError` / `TypeError` at construction.

The codes below are those of `Failed` results the engine gives itself; a message that SQS
refused carries SQS's own code (`InternalError`, `KMS.ThrottlingException`, ...).

`CODES` is the one table of what an error code means: each SQS, S3, transport and
receipt-handle code with its `Kind` and, where a person needs one, a hint. Sending, receiving
and the wire all read it through `kind_of` and `classify`; adding a retryable code is one line
there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
from botocore.retries.standard import (
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)


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
    """A call the engine cannot do without (resolving a queue name) stayed unreachable or
    overloaded through every attempt; try again later."""

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


class Kind(enum.Enum):
    """What a failure means for the call or entry that met it."""

    RETRYABLE = "retryable"  # transient: the same call may succeed later (5xx, timeouts)
    THROTTLING = "throttling"  # retryable, and a sign to send fewer requests at once
    FATAL = "fatal"  # the queue refuses everything (missing, access denied, credentials)
    RECEIPT_HANDLE = "receipt handle"  # the message is no longer ours to delete or extend
    REJECTED = "rejected"  # this request or entry is wrong; sending it again will fail again


@dataclass(frozen=True, slots=True)
class Code:
    kind: Kind
    hint: str | None = None


_NO_QUEUE = "check the queue name or URL, the region and the endpoint"
_CREDENTIALS = "check the credentials: the server did not accept them"
_NO_ANSWER = "no answer from the endpoint: check its URL, and that the server is running"
_PERMISSION = {  # what each kind of work needs: an access error names the permissions
    "send": "sqs:SendMessage (and sqs:GetQueueUrl for a queue name) on this queue",
    "receive": "sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility (and "
    "sqs:GetQueueUrl for a queue name) on this queue",
    # Large payloads in S3 (`sqs_async.offload`).
    "store": "s3:PutObject on the bucket (and kms:GenerateDataKey on the key, with a KMS key)",
    "fetch": "s3:GetObject on the bucket (and kms:Decrypt on the key, with a KMS key)",
    "delete": "s3:DeleteObject on the bucket",
}
_ACCESS = "the credentials in use need {permission}"  # filled in by `explain`

_FATAL = Kind.FATAL
_THROTTLING = Kind.THROTTLING
_RETRYABLE = Kind.RETRYABLE
_HANDLE = Kind.RECEIPT_HANDLE

CODES: dict[str, Code] = {
    # The queue refuses every request.
    "AWS.SimpleQueueService.NonExistentQueue": Code(_FATAL, _NO_QUEUE),
    "QueueDoesNotExist": Code(_FATAL, _NO_QUEUE),
    "AWS.SimpleQueueService.QueueDeletedRecently": Code(_FATAL, _NO_QUEUE),
    "QueueDeletedRecently": Code(_FATAL, _NO_QUEUE),
    "AccessDenied": Code(_FATAL, _ACCESS),
    "AccessDeniedException": Code(_FATAL, _ACCESS),
    "OptInRequired": Code(_FATAL),
    "InvalidAddress": Code(_FATAL),
    # The credentials were refused.
    "InvalidClientTokenId": Code(_FATAL, _CREDENTIALS),
    "UnrecognizedClientException": Code(_FATAL, _CREDENTIALS),
    "SignatureDoesNotMatch": Code(_FATAL, _CREDENTIALS),
    "IncompleteSignature": Code(_FATAL, _CREDENTIALS),
    "MissingAuthenticationToken": Code(_FATAL, _CREDENTIALS),
    "InvalidSecurity": Code(_FATAL, _CREDENTIALS),
    "ExpiredToken": Code(_FATAL, _CREDENTIALS),
    "ExpiredTokenException": Code(_FATAL, _CREDENTIALS),
    # Raised before any request (botocore's exception names).
    "NoCredentialsError": Code(
        _FATAL,
        "no AWS credentials were found: configure the standard AWS chain (environment, ~/.aws, "
        "instance or task role) or pass them explicitly",
    ),
    "NoRegionError": Code(_FATAL, "no AWS region was found: set region_name or AWS_DEFAULT_REGION"),
    # Throttling that botocore's generic list does not carry (it knows `Throttling`,
    # `ThrottlingException`, `RequestLimitExceeded`, ...; S3 answers `SlowDown`).
    "KMS.ThrottlingException": Code(_THROTTLING),
    "RequestThrottled": Code(_THROTTLING),
    "SlowDown": Code(_THROTTLING),
    # S3, where large payloads are stored (`sqs_async.offload`).
    "NoSuchBucket": Code(_FATAL, "the bucket does not exist: create it, or name another"),
    "NoSuchKey": Code(
        _FATAL,
        "the payload's object is gone: deleted after a reader's delete, or expired by a "
        "lifecycle rule",
    ),
    # No answer came back (botocore's exception names): the request never reached a server.
    "EndpointConnectionError": Code(_RETRYABLE, _NO_ANSWER),
    "ConnectTimeoutError": Code(_RETRYABLE, _NO_ANSWER),
    "ReadTimeoutError": Code(_RETRYABLE, _NO_ANSWER),
    "ConnectionClosedError": Code(_RETRYABLE, _NO_ANSWER),
    "ProxyConnectionError": Code(_RETRYABLE, _NO_ANSWER),
    "SSLError": Code(_RETRYABLE, _NO_ANSWER),
    "HTTPClientError": Code(_RETRYABLE, _NO_ANSWER),
    "TimeoutError": Code(_RETRYABLE, _NO_ANSWER),  # an S3 transfer that outlived its bound
    # An entry SQS did not report on: retried like a transient failure.
    MISSING_RESULT: Code(_RETRYABLE),
    # The receipt handle no longer names a message we hold.
    "ReceiptHandleIsInvalid": Code(_HANDLE),
    "MessageNotInflight": Code(_HANDLE),
    "InvalidParameterValue": Code(_HANDLE),  # an expired receipt handle, as SQS words it
}
CREDENTIAL_CODES = frozenset(
    code for code, meaning in CODES.items() if meaning.hint == _CREDENTIALS
)

_throttled_checker = ThrottledRetryableChecker()
_transient_checker = TransientRetryableChecker()


def kind_of(code: str, status: int | None = None) -> Kind:
    """What the error code `code` of one entry (or of an answer with HTTP `status`) means;
    beyond the table, any code naming throttling is throttling. A whole call's failure is
    `classify`'s to read."""
    meaning = CODES.get(code)
    if meaning is not None:
        return meaning.kind
    if "Throttl" in code or status == 429:
        return Kind.THROTTLING
    if status is not None and status >= 500:
        return Kind.RETRYABLE
    return Kind.REJECTED


def error_code(exc: BaseException) -> str:
    """The AWS error code of `exc`, or its class name when it has none."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("QueryErrorCode") or error.get("Code") or "ClientError")
    return type(exc).__name__


def classify(exc: BaseException) -> Kind:
    """What a whole call's failure means (never `RECEIPT_HANDLE`: that is an entry's)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        codes = (error.get("Code"), error.get("QueryErrorCode"))
        kinds = {meaning.kind for code in codes if code and (meaning := CODES.get(str(code)))}
        context = RetryContext(attempt_number=1, parsed_response=exc.response)
        if Kind.FATAL in kinds:
            return Kind.FATAL
        if Kind.THROTTLING in kinds or _throttled_checker.is_retryable(context) or status == 429:
            return Kind.THROTTLING
        if (
            Kind.RETRYABLE in kinds
            or (status or 0) >= 500
            or _transient_checker.is_retryable(context)
        ):
            return Kind.RETRYABLE
        return Kind.REJECTED
    meaning = CODES.get(type(exc).__name__)
    if meaning is not None:
        return meaning.kind
    context = RetryContext(attempt_number=1, caught_exception=exc)
    if isinstance(exc, TimeoutError | OSError) or _transient_checker.is_retryable(context):
        return Kind.RETRYABLE
    if isinstance(exc, BotoCoreError):
        # Missing credentials or region, bad parameters: the same call will fail again.
        return Kind.FATAL
    return Kind.REJECTED


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same call again later can help."""
    return classify(exc) in (Kind.RETRYABLE, Kind.THROTTLING)


def is_congestion(exc: BaseException) -> bool:
    """Throttling or a 5xx: a sign to send fewer requests at once."""
    if classify(exc) is Kind.THROTTLING:
        return True
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
    return False


def may_have_been_accepted(exc: BaseException) -> bool:
    """The request may have reached SQS before it failed: retrying it may duplicate messages
    (on a standard queue; a FIFO queue deduplicates within 5 minutes)."""
    return isinstance(exc, TimeoutError | ReadTimeoutError | ConnectionClosedError)


def never_reached(exc: BaseException) -> bool:
    """The request surely was not taken: the server answered it with a refusal (4xx), or no
    connection was made. After anything else (a 5xx, a reset or timeout once sent), the
    messages it carried may have been accepted."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and 400 <= status < 500
    return isinstance(exc, ConnectTimeoutError)


def refusal(
    exc: BaseException,
    code: str,
    queue: str,
    *,
    work: str = "send",
    retryable: bool = False,
    service: str = "SQS",
) -> SqsAsyncError:
    """The error to raise when `queue` refused a call with `exc` (AWS error code `code`);
    `work` ("send", "receive"; for S3 "store", "fetch", "delete") says which permissions an
    access error points to; `service` who refused."""
    kind = SqsUnavailableError if retryable else SqsClientError
    response = getattr(exc, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if response else None
    message = explain(code, str(exc), queue, work=work, status=status, service=service)
    return kind(message, code, status)


def explain(
    code: str,
    detail: str,
    queue: str,
    *,
    work: str = "send",
    status: int | None = None,
    service: str = "SQS",
) -> str:
    """A message a person can act on for a failure that affects the whole queue (or, for
    S3, the object); `status` is the HTTP status of the answer, None when there was none."""
    meaning = CODES.get(code)
    if meaning is not None and meaning.hint is not None:
        hint = meaning.hint.format(permission=_PERMISSION[work])
    elif status is not None and status >= 500:
        hint = f"the server failed (HTTP {status}): try again later"
    elif status is not None:
        hint = (
            f"the server refused the request (HTTP {status}): check that the endpoint is an "
            f"{service} endpoint, and the {'queue URL' if service == 'SQS' else 'bucket'}"
        )
    else:
        hint = f"check the endpoint, the region and the {'queue' if service == 'SQS' else 'bucket'}"
    detail = detail.replace(" (reached max retries: 0)", "")  # botocore's retries are off
    detail = detail or "no answer in time"
    return f"{service} refused requests to {queue}: {code}: {detail} ({hint})"
