"""Test-only JPEG encoders for transfer syntaxes pydicom cannot encode: baseline (via Pillow) and lossless."""

import io

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, JPEGLosslessSV1

_CATEGORIES = 17  # SSSS 0..16, every code five bits long


def _marker(code: int, payload: bytes) -> bytes:
    return bytes([0xFF, code]) + (len(payload) + 2).to_bytes(2, "big") + payload


def encode_lossless(plane: np.ndarray, precision: int = 16) -> bytes:
    """A minimal process-14 (selection value 1) lossless JPEG of one greyscale frame."""
    rows, columns = plane.shape
    image = plane.astype(np.int64)
    predicted = np.empty_like(image)
    predicted[0, 0] = 1 << (precision - 1)
    predicted[0, 1:] = image[0, :-1]
    predicted[1:, 0] = image[:-1, 0]
    predicted[1:, 1:] = image[1:, :-1]
    modulus = 1 << 16
    differences = (image - predicted) % modulus
    differences[differences >= modulus // 2] -= modulus
    bits: list[str] = []
    for diff in differences.ravel().tolist():
        size = 16 if diff == -32768 else abs(diff).bit_length()
        bits.append(format(size, "05b"))
        if 0 < size < 16:
            bits.append(format(diff if diff > 0 else diff + (1 << size) - 1, f"0{size}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    data = bytearray()
    for start in range(0, len(stream), 8):
        byte = int(stream[start : start + 8], 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0x00)
    counts = [0] * 16
    counts[4] = _CATEGORIES
    frame_header = bytes([precision]) + rows.to_bytes(2, "big") + columns.to_bytes(2, "big") + bytes([1, 1, 0x11, 0])
    huffman = bytes([0x00]) + bytes(counts) + bytes(range(_CATEGORIES))
    scan_header = bytes([1, 1, 0x00, 1, 0, 0])
    return (
        b"\xff\xd8"
        + _marker(0xC3, frame_header)
        + _marker(0xC4, huffman)
        + _marker(0xDA, scan_header)
        + bytes(data)
        + b"\xff\xd9"
    )


def to_jpeg_lossless(ds: Dataset) -> None:
    plane = ds.pixel_array
    ds.PixelData = encapsulate([encode_lossless(plane)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1


def to_jpeg_baseline(ds: Dataset) -> None:
    plane = ds.pixel_array.astype(np.float64)
    scaled = np.clip(plane / max(plane.max(), 1) * 255, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(scaled, mode="L").save(buffer, format="JPEG", quality=95)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
