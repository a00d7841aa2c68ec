"""Blobs are content-addressed: the same bytes share a key, and stored bytes never change."""

import boto3
import pytest
from moto import mock_aws

from portal import storage
from portal.crypto.sm3 import sm3
from portal.storage import BlobNotFound, LocalBlobStore, S3BlobStore, store_from_url


def test_a_blob_is_stored_under_the_sm3_of_its_bytes(tmp_path):
    store = LocalBlobStore(tmp_path)
    key = store.put("签署文件".encode())
    assert key == sm3("签署文件".encode()).hex()
    assert store.get(key) == "签署文件".encode()
    assert store.put("签署文件".encode()) == key


def test_a_new_revision_is_a_new_blob_and_the_old_one_stays(tmp_path):
    store = LocalBlobStore(tmp_path)
    original = store.put(b"%PDF-1.7 original")
    revised = store.put(b"%PDF-1.7 original + signature")
    assert original != revised
    assert store.get(original) == b"%PDF-1.7 original"


def test_unknown_or_malformed_keys_are_not_found(tmp_path):
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobNotFound):
        store.get("0" * 64)
    with pytest.raises(BlobNotFound):
        store.get("../../etc/passwd")


def test_an_s3_bucket_behaves_like_the_local_folder():
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="esign")
        store = store_from_url("s3://esign/blobs")
        assert isinstance(store, S3BlobStore)
        key = store.put(b"contract")
        assert store.exists(key) and store.get(key) == b"contract"
        assert not store.exists("1" * 64)
        with pytest.raises(BlobNotFound):
            store.get("1" * 64)
        store.check()


@pytest.mark.both_databases
def test_saving_the_same_bytes_twice_records_one_blob(app):
    first = storage.save(b"%PDF-1.7", "application/pdf")
    second = storage.save(b"%PDF-1.7", "application/pdf")
    assert first.id == second.id and first.size == 8
    assert storage.load(first.key) == b"%PDF-1.7"
