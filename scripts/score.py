#!/usr/bin/env python3
"""Scores what one side of a call heard against what the other side sent.

usage: score.py REFERENCE.wav DEGRADED.wav [nb|wb]

Both files are read as mono (first channel), resampled to 8 kHz (nb, default) or 16 kHz (wb),
aligned by cross-correlation (the gateway adds delay; PESQ realigns small offsets itself but a
long leading silence confuses it), trimmed to the overlap, and scored with ITU-T P.862 (PESQ).
Prints one line: `pesq=<score> lag_ms=<lag> seconds=<overlap>`.
"""
import sys

import numpy as np
import soundfile as sf
from pesq import pesq
from scipy.signal import resample_poly


def load(path, rate):
    data, file_rate = sf.read(path, dtype="float64", always_2d=True)
    mono = data[:, 0]
    if file_rate != rate:
        mono = resample_poly(mono, rate, file_rate)
    return mono


def main():
    ref_path, deg_path = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "nb"
    rate = 16000 if mode == "wb" else 8000
    ref = load(ref_path, rate)
    deg = load(deg_path, rate)
    size = 1
    while size < len(ref) + len(deg):
        size *= 2
    corr = np.fft.irfft(np.fft.rfft(deg, size) * np.conj(np.fft.rfft(ref, size)), size)
    lag = int(np.argmax(np.abs(corr)))
    if lag > size // 2:
        lag -= size
    if lag > 0:
        deg = deg[lag:]
    elif lag < 0:
        ref = ref[-lag:]
    n = min(len(ref), len(deg))
    if n < rate:
        print("pesq=nan lag_ms=0 seconds=0")
        return
    score = pesq(rate, ref[:n], deg[:n], mode)
    print(f"pesq={score:.3f} lag_ms={1000.0 * lag / rate:.1f} seconds={n / rate:.2f}")


if __name__ == "__main__":
    main()
