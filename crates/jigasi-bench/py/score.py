#!/usr/bin/env python3
"""usage: score.py ref.wav deg.wav -> one JSON line {"pesq_nb": x, "lag": samples at 8 kHz}.

The degraded recording is longer than the reference and holds it (looped) somewhere: the lag
is the offset in the recording (at 8 kHz) where one whole copy of the reference starts, found by
FFT cross-correlation; PESQ-NB (ITU-T P.862) scores that copy against the reference."""
import json, sys
import numpy as np, soundfile as sf
from scipy.signal import resample_poly
from pesq import pesq

def load(path):
    x, fs = sf.read(path)
    x = x[:, 0] if x.ndim > 1 else x
    if fs != 8000:
        x = resample_poly(x, 8000, fs)
    return x

ref, deg = load(sys.argv[1]), load(sys.argv[2])
if len(deg) < len(ref):
    print(json.dumps({"error": f"recording shorter than the reference ({len(deg)} < {len(ref)})"}))
    sys.exit(0)
L = 1 << int(np.ceil(np.log2(len(deg) + len(ref))))
corr = np.fft.irfft(np.fft.rfft(deg, L) * np.conj(np.fft.rfft(ref, L)), L)
valid = corr[: len(deg) - len(ref) + 1]
lag = int(np.argmax(valid))
seg = deg[lag : lag + len(ref)]
print(json.dumps({"pesq_nb": float(pesq(8000, ref, seg, "nb")), "lag": lag}))
