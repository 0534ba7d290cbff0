"""The IDX reader on hand-made files, good and broken."""

import gzip

import numpy as np
import pytest

from deepstudy.data.idx import IdxError, parse_idx, read_idx, write_idx


def header(dtype_code, *dims):
    return bytes([0, 0, dtype_code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_plain_and_gzip(tmp_path, name):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    out = read_idx(tmp_path / name)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, array)


def test_labels_one_dimension():
    data = header(0x08, 5) + bytes([0, 1, 2, 3, 9])
    assert parse_idx(data).tolist() == [0, 1, 2, 3, 9]


def test_big_endian_int32_payload():
    data = header(0x0C, 2) + (1).to_bytes(4, "big") + (70000).to_bytes(4, "big")
    assert parse_idx(data).tolist() == [1, 70000]


@pytest.mark.parametrize("data, reason", [
    (b"", "too short"),
    (b"\x00\x00", "too short"),
    (b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc", "not an IDX file"),  # wrong magic
    (bytes([0, 0, 0x07, 1]) + (3).to_bytes(4, "big") + b"abc", "not an IDX file"),  # unknown type code
    (bytes([0, 0, 0x08, 3]) + (3).to_bytes(4, "big"), "header is truncated"),
    (bytes([0, 0, 0x08, 0]), "header is truncated"),
    (header(0x08, 2, 2, 2) + bytes(7), "truncated"),
    (header(0x08, 2) + bytes(3), "longer than its header says"),
])
def test_broken_files_are_refused_with_a_reason(data, reason):
    with pytest.raises(IdxError, match=reason):
        parse_idx(data, "test.idx")


def test_truncated_gzip(tmp_path):
    full = gzip.compress(header(0x08, 1000) + bytes(1000))
    (tmp_path / "x.gz").write_bytes(full[: len(full) // 2])
    with pytest.raises(IdxError, match="damaged or truncated gzip"):
        read_idx(tmp_path / "x.gz")


def test_gzip_of_something_else(tmp_path):
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(IdxError, match="not an IDX file"):
        read_idx(tmp_path / "x.gz")
