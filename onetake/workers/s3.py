"""S3-compatible object storage: one client per worker process, uploads and downloads that survive transient
faults, and every boto3 error translated to a StorageError or SourceError without credentials in it.

Endpoint, region and credentials come only from boto3's standard chain (``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3``, ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID`` ..., ``~/.aws/config``), so MinIO, Ceph, OSS, COS
and OBS work without onetake settings.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig, create_transfer_manager

from ..pipeline.config import FarmConfig
from ..pipeline.destinations import safe_segment, split_s3_url
from ..pipeline.errors import SourceError, StorageError
from ..pipeline.hashes import short_hash
from .files import exclusive

T = TypeVar("T")
# botocore's own retries (standard mode: exponential backoff with jitter, 5xx, throttling, connection errors)
# handle short blips; the window below covers an endpoint that stays down for longer.
BOTOCORE_ATTEMPTS = 3
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 4.0
THROTTLING = {"Throttling", "ThrottlingException", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed",
              "RequestLimitExceeded", "TooManyRequestsException", "ServiceUnavailable", "InternalError"}
CHECKSUM_KEY = "sha256"      # x-amz-meta-sha256: the SHA-256 of the object's bytes, hex
DELETE_BATCH = 1000          # keys per DeleteObjects request, S3's limit


@dataclass(frozen=True)
class Transfer:
    """How transfers are made (FarmConfig.transfer() travels in task params as a dict)."""

    multipart_bytes: int
    concurrency: int
    retry_window_s: float

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Transfer:
        values = params or FarmConfig().transfer()
        return cls(int(values["multipart_bytes"]), int(values["concurrency"]), float(values["retry_window_s"]))

    def config(self) -> TransferConfig:
        return TransferConfig(multipart_threshold=self.multipart_bytes, multipart_chunksize=self.multipart_bytes,
                              max_concurrency=self.concurrency, use_threads=True)


# ---------------------------------------------------------------------------------------------------------
# the client


_lock = threading.Lock()


def _chain_key() -> tuple[str | None, ...]:
    names = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION",
             "AWS_ACCESS_KEY_ID", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
    return tuple(os.environ.get(n) for n in names)


_made: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def client(concurrency: int) -> Any:
    """This process's client for the standard chain as it is now: clients are thread-safe and sessions are not,
    and one shared client keeps its connection pool warm across files and tasks."""
    key = (concurrency, *_chain_key())
    with _lock:
        if key not in _made:
            config = botocore.config.Config(retries={"mode": "standard", "max_attempts": BOTOCORE_ATTEMPTS},
                                            max_pool_connections=concurrency + 2, connect_timeout=5, read_timeout=60)
            session = boto3.session.Session()
            _made[key] = (session, session.client("s3", config=config))
        return _made[key][1]


def secrets() -> list[str]:
    """The credential strings a message must never show: those of every client made here, and the usual
    variables."""
    values = [os.environ.get(n) for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    with _lock:
        sessions = [session for session, _ in _made.values()]
    for session in sessions:
        try:
            creds = session.get_credentials()
            frozen = creds.get_frozen_credentials() if creds is not None else None
        except botocore.exceptions.BotoCoreError:
            frozen = None
        if frozen is not None:
            values += [frozen.access_key, frozen.secret_key, frozen.token]
    return [v for v in values if v and len(v) >= 4]


def redact(text: str) -> str:
    for value in secrets():
        text = text.replace(value, "***")
    return text


def cause(exc: BaseException) -> str:
    """One line naming what the store said, credentials removed."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = f"{error.get('Code', 'error')}: {error.get('Message') or 'no message'} (HTTP {status})"
    elif isinstance(exc, botocore.exceptions.NoCredentialsError):
        text = ("no credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or configure "
                "~/.aws/credentials")
    else:
        text = str(exc) or type(exc).__name__
    return redact(text)


def transient(exc: BaseException) -> bool:
    """Worth trying again: the endpoint unreachable or cut off, a 5xx, throttling."""
    if isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or status == 429 or exc.response.get("Error", {}).get("Code") in THROTTLING
    return isinstance(exc, ConnectionError)


def retrying(op: Callable[[], T], window_s: float, stop: threading.Event | None = None) -> T:
    """``op()``, tried again with capped exponential backoff and full jitter while it fails for a transient
    reason and ``window_s`` seconds have not passed since the first try."""
    deadline = time.monotonic() + window_s
    attempt = 0
    while True:
        try:
            return op()
        except Exception as exc:
            if not transient(exc) or time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                raise
        attempt += 1
        pause = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt))
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))


def not_found(exc: BaseException) -> bool:
    return isinstance(exc, botocore.exceptions.ClientError) and \
        exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


# ---------------------------------------------------------------------------------------------------------
# sources


def fetch(url: str, work_dir: str, transfer: Transfer) -> str:
    """A local copy of the object at ``url`` in the work dir's scratch, keyed by bucket, key and ETag: a rerun
    or a second run of the same object reuses it, a changed object is fetched anew."""
    bucket, key = split_s3_url(url)
    s3 = client(transfer.concurrency)
    try:
        head = retrying(lambda: s3.head_object(Bucket=bucket, Key=key), transfer.retry_window_s)
    except Exception as exc:
        if not_found(exc):
            raise SourceError(url, "no such object", "check the bucket and key") from None
        if isinstance(exc, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)):
            raise SourceError(url, f"cannot be read ({cause(exc)})", "check the endpoint, the credentials "
                                                                         "and the object's permissions") from None
        raise
    etag = head.get("ETag", "").strip('"')
    size = int(head.get("ContentLength", 0))
    slot = short_hash(f"{bucket}\0{key}\0{etag}")
    local = Path(work_dir) / "sources" / slot / safe_segment(key.rsplit("/", 1)[-1])
    with exclusive([str(local)]):
        if local.is_file() and local.stat().st_size == size:
            return str(local)
        partial = local.with_name(local.name + ".partial")
        manager = create_transfer_manager(s3, transfer.config())
        try:
            with manager:
                retrying(lambda: manager.download(bucket, key, str(partial)).result(), transfer.retry_window_s)
            after = retrying(lambda: s3.head_object(Bucket=bucket, Key=key), transfer.retry_window_s)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            partial.unlink(missing_ok=True)
            raise SourceError(url, f"cannot be downloaded ({cause(exc)})",
                              "check the endpoint and try again") from None
        if after.get("ETag") != head.get("ETag") or partial.stat().st_size != size:
            partial.unlink(missing_ok=True)
            raise SourceError(url, "changed while it was being downloaded", "run again once the upload has finished")
        partial.chmod(0o444)
        os.rename(partial, local)
    return str(local)


# ---------------------------------------------------------------------------------------------------------
# uploads


def md5_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    sha256: str
    size: int
    content_type: str


class Uploader:
    """Uploads and checks objects in one bucket with one client and one transfer manager."""

    def __init__(self, bucket: str, transfer: Transfer) -> None:
        self.bucket = bucket
        self.transfer = transfer
        self.s3 = client(transfer.concurrency)
        self.pool = ThreadPoolExecutor(max_workers=transfer.concurrency, thread_name_prefix="onetake-s3")
        self.manager = create_transfer_manager(self.s3, transfer.config())
        self.stop = threading.Event()

    def __enter__(self) -> Uploader:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.manager.shutdown(cancel=exc[0] is not None)

    def fail(self, what: str, exc: BaseException) -> StorageError:
        detail = cause(exc)
        if transient(exc):
            detail += f"; still failing after retrying for {self.transfer.retry_window_s:g} s"
        return StorageError(f"s3://{self.bucket}: {what} failed ({detail})")

    def call(self, what: str, op: Callable[[], T]) -> T:
        try:
            return retrying(op, self.transfer.retry_window_s, self.stop)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self.fail(what, exc) from None

    def listing(self, prefix: str) -> dict[str, int]:
        """Every object under ``prefix``/ with its size."""
        found: dict[str, int] = {}

        def page(token: str | None) -> dict[str, Any]:
            args = {"Bucket": self.bucket, "Prefix": prefix.rstrip("/") + "/"}
            if token:
                args["ContinuationToken"] = token
            return self.s3.list_objects_v2(**args)

        token = None
        while True:
            answer = self.call(f"listing {prefix}/", functools.partial(page, token))
            found.update({o["Key"]: int(o["Size"]) for o in answer.get("Contents", [])})
            token = answer.get("NextContinuationToken")
            if not answer.get("IsTruncated") or not token:
                return found

    def recorded(self, key: str) -> tuple[str | None, int] | None:
        """The SHA-256 recorded on the object and its size, or None when there is no such object."""
        try:
            head = retrying(lambda: self.s3.head_object(Bucket=self.bucket, Key=key), self.transfer.retry_window_s,
                            self.stop)
        except Exception as exc:
            if not_found(exc):
                return None
            if isinstance(exc, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)):
                raise self.fail(f"checking {key}", exc) from None
            raise
        return head.get("Metadata", {}).get(CHECKSUM_KEY), int(head.get("ContentLength", -1))

    def read(self, key: str) -> bytes | None:
        try:
            answer = retrying(lambda: self.s3.get_object(Bucket=self.bucket, Key=key), self.transfer.retry_window_s,
                              self.stop)
            return answer["Body"].read()
        except Exception as exc:
            if not_found(exc):
                return None
            if isinstance(exc, (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)):
                raise self.fail(f"reading {key}", exc) from None
            raise

    def delete(self, key: str) -> None:
        self.call(f"removing {key}", lambda: self.s3.delete_object(Bucket=self.bucket, Key=key))

    def delete_all(self, keys: list[str]) -> None:
        """Remove ``keys``, as many per request as S3 takes (DeleteObjects: 1000)."""
        for at in range(0, len(keys), DELETE_BATCH):
            batch = keys[at:at + DELETE_BATCH]
            answer = self.call(f"removing {batch[0]} and {len(batch) - 1} more", lambda: self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}))
            if answer.get("Errors"):
                error = answer["Errors"][0]
                raise StorageError(f"s3://{self.bucket}/{error.get('Key')}: cannot be removed ({error.get('Code')}: "
                                   f"{error.get('Message') or 'no message'}); run the delivery again to remove it")

    def put(self, item: Upload) -> None:
        """Upload one file (in parts above the threshold) and check what the store kept: a single-part object's
        ETag is the MD5 of the bytes the store received, so a match needs no second request; otherwise (parts,
        or a store whose ETags are not MD5s) the SHA-256 recorded on the object is read back."""
        extra = {"ContentType": item.content_type, "Metadata": {CHECKSUM_KEY: item.sha256}}
        answer: dict[str, Any] = {}
        if item.size < self.transfer.multipart_bytes:  # one request, straight from this thread
            def upload() -> None:
                with open(item.path, "rb") as body:
                    answer.update(self.s3.put_object(Bucket=self.bucket, Key=item.key, Body=body, **extra))
        else:  # in parts, several at once, by the transfer manager
            def upload() -> None:
                self.manager.upload(str(item.path), self.bucket, item.key, extra_args=extra).result()
        self.call(f"uploading {item.key}", upload)
        etag = answer.get("ETag", "").strip('"')
        # with SSE-KMS or SSE-C the ETag is not the MD5 of the content
        plain = etag and not answer.get("SSECustomerAlgorithm") and "kms" not in answer.get("ServerSideEncryption", "")
        if plain:
            sent = md5_of(item.path)
            if etag != sent:  # removed, or a rerun would take its recorded SHA-256 for the truth
                self.delete(item.key)
                raise StorageError(f"s3://{self.bucket}/{item.key}: the store received different bytes (its MD5 "
                                   f"{etag}, the file's {sent}); run again")
            return
        stored = self.recorded(item.key)
        if stored != (item.sha256, item.size):
            self.delete(item.key)
            raise StorageError(f"s3://{self.bucket}/{item.key}: the store holds {stored} (SHA-256, size), not "
                               f"{(item.sha256, item.size)}; another writer may be replacing it, run again")

    def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        digest = hashlib.sha256(body).hexdigest()
        self.call(f"uploading {key}", lambda: self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata={CHECKSUM_KEY: digest}))
        stored = self.recorded(key)
        if stored != (digest, len(body)):
            raise StorageError(f"s3://{self.bucket}/{key}: the stored object's SHA-256 is {stored}, not {digest}")

    def each(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        """``fn`` over ``items`` concurrently; the first error stops the rest and is raised."""
        futures = [self.pool.submit(fn, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            self.stop.set()
            for f in futures:
                f.cancel()
            raise
