#!/usr/bin/env python3
"""Encodes a WAV file to a raw G.722 bitstream with spandsp, the encoder baresip uses, for
`g722-uplink` (the phone side of a G.722 call, offline).

usage: g722-spandsp.py IN.wav OUT.g722 [REFERENCE16.wav]

IN.wav is read as mono (first channel) and resampled to 16 kHz (scipy `resample_poly`), with
200 ms of silence before and 400 ms after (as a phone sends them around a sentence). OUT.g722 is
64 kbit/s G.722, one byte per two samples, no framing. With REFERENCE16.wav, spandsp's own
decode of OUT.g722 is written there: the score of G.722 alone, and a reference decode to compare
`g722-uplink`'s `ours16.wav` with. Needs libspandsp (`libspandsp2`) and the scoring venv of
`scripts/install-deps.sh` (numpy, scipy, soundfile): `target/venv/bin/python`.
"""
import ctypes
import sys

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

G722_RATE_64K = 64000


def spandsp():
    lib = ctypes.CDLL("libspandsp.so.2")
    for init in (lib.g722_encode_init, lib.g722_decode_init):
        init.restype = ctypes.c_void_p
        init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    for run in (lib.g722_encode, lib.g722_decode):
        run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    return lib


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    data, rate = sf.read(sys.argv[1], dtype="float64", always_2d=True)
    mono = resample_poly(data[:, 0], 16000, rate) if rate != 16000 else data[:, 0]
    mono = np.concatenate([np.zeros(3200), mono, np.zeros(6400)])
    pcm = np.clip(np.round(mono * 32768), -32768, 32767).astype(np.int16)
    lib = spandsp()
    encoder = lib.g722_encode_init(None, G722_RATE_64K, 0)
    bits = np.zeros(len(pcm) // 2 + 16, dtype=np.uint8)
    n = lib.g722_encode(encoder, bits.ctypes.data, pcm.ctypes.data, len(pcm))
    bits = bits[:n]
    with open(sys.argv[2], "wb") as out:
        out.write(bits.tobytes())
    if len(sys.argv) == 4:
        decoder = lib.g722_decode_init(None, G722_RATE_64K, 0)
        decoded = np.zeros(2 * n + 16, dtype=np.int16)
        m = lib.g722_decode(decoder, decoded.ctypes.data, bits.ctypes.data, n)
        sf.write(sys.argv[3], decoded[:m], 16000, subtype="PCM_16")


if __name__ == "__main__":
    main()
