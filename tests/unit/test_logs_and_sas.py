import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from azure.storage.blob import BlobServiceClient, UserDelegationKey

from shared.adapters.blobs import BlobPermission, UrlSigner
from shared.logs import RedactingFilter, redact
from tools.azurite import connection_string


def test_secrets_are_redacted_from_messages():
    text = (
        "GET https://a.blob.core.windows.net/c/b?sv=2024&se=x&sp=r&sig=abc%2Fdef%3D "
        "AccountKey=Zm9vYmFy; password=hunter2 PGPASSWORD=s3cret Authorization: Bearer eyJ0eXAi.xyz.abc "
        "SharedKey devstoreaccount1:c2lnbmF0dXJl"
    )
    cleaned = redact(text)
    for secret in ("abc%2Fdef%3D", "Zm9vYmFy", "hunter2", "s3cret", "eyJ0eXAi.xyz.abc", "c2lnbmF0dXJl"):
        assert secret not in cleaned
    assert "sp=r" in cleaned  # the rest stays readable


def test_the_filter_cleans_message_arguments_and_tracebacks():
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "copy from %s failed", ("https://h/c/b?sig=SECRET",), None
    )
    try:
        raise ValueError("url https://h/c/b?sp=r&sig=TRACESECRET")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    assert "SECRET" not in record.getMessage()
    assert "TRACESECRET" not in record.exc_text


class _Service:
    """Just enough of a BlobServiceClient signed in with Entra ID for the signer."""

    account_name = "prodaccount"
    credential = object()

    def __init__(self):
        self.real = BlobServiceClient("https://prodaccount.blob.core.windows.net")

    def get_user_delegation_key(self, start, expiry):
        key = UserDelegationKey()
        key.signed_oid, key.signed_tid = "oid", "tid"
        key.signed_start, key.signed_expiry = (
            start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        key.signed_service, key.signed_version, key.value = "b", "2024-11-04", "a2V5"
        return key

    def get_blob_client(self, container, blob):
        return self.real.get_blob_client(container, blob)


def sas_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def test_user_delegation_sas_is_https_only_for_one_blob_and_least_permission():
    signer = UrlSigner(_Service())  # type: ignore[arg-type]
    expires = datetime.now(UTC) + timedelta(hours=8)
    read = sas_of(
        signer.sign("archives", "ns/env/x.tar.gz", BlobPermission.READ, expires, content_disposition="attachment")
    )
    assert (read["spr"], read["sp"], read["sr"]) == ("https", "r", "b")
    assert read["skoid"] == "oid"  # a user-delegation signature, not an account key
    assert read["rscd"] == "attachment"
    write = sas_of(signer.sign("uploads", "ns/env/u", BlobPermission.CREATE_WRITE, expires))
    assert (write["sp"], write["sr"]) == ("cw", "b")


def test_account_key_sas_on_azurite_names_one_blob():
    service = BlobServiceClient.from_connection_string(connection_string(1, 1, 1))
    url = UrlSigner(service).sign("c", "b", BlobPermission.READ, datetime.now(UTC) + timedelta(minutes=5))
    sas = sas_of(url)
    assert (sas["sp"], sas["sr"]) == ("r", "b")
    assert urlparse(url).path.endswith("/c/b")
