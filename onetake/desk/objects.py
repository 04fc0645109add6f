"""Deliveries in object storage, as the desk shows them: the manifest read from the bucket, and each file as a
presigned link (the browser fetches it from the store; the desk never streams it). Credentials and the
endpoint come from boto3's standard chain, as for the farm's own uploads."""

from __future__ import annotations

import json
import threading
from typing import Any

from ..pipeline.destinations import parse_location

PRESIGNED_S = 3600  # how long a file link works
_local = threading.local()


def _client() -> Any:
    client = getattr(_local, "client", None)
    if client is None:
        import boto3
        import botocore.config

        config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5,
                                        read_timeout=20)
        client = _local.client = boto3.session.Session().client("s3", config=config)
    return client


def _bucket_key(url: str) -> tuple[str, str]:
    location = parse_location(url, "manifest")
    return location.bucket, location.prefix


def read_s3_manifest(url: str) -> dict[str, Any] | str:
    """The manifest at ``url``; a line saying why not when it cannot be read."""
    import botocore.exceptions

    bucket, key = _bucket_key(url)
    try:
        body = _client().get_object(Bucket=bucket, Key=key)["Body"].read()
        data = json.loads(body)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, ValueError) as exc:
        return f"{url}: cannot be read from object storage ({type(exc).__name__}); check the endpoint and the " \
               f"desk's credentials"
    return data if isinstance(data, dict) else f"{url}: not a manifest"


def presigned(manifest_url: str, path: str) -> str:
    """A time-limited GET link to the file ``path`` of the delivery whose manifest is at ``manifest_url``."""
    bucket, key = _bucket_key(manifest_url)
    folder = key.rsplit("/", 1)[0]
    return _client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": f"{folder}/{path}"},
                                            ExpiresIn=PRESIGNED_S)
