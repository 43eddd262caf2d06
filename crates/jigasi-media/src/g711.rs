//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA), our own implementation.
//!
//! Decoding uses 256-entry tables built at compile time; encoding is computed with a
//! leading-zeros count (a few instructions per sample, no 64 KB table to keep in cache).

/// Encodes one 16-bit linear sample to µ-law (G.711 §3, 14-bit magnitude, bias 33).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample);
    let sign = if magnitude < 0 {
        magnitude = -magnitude;
        0x80
    } else {
        0
    };
    magnitude = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    // magnitude is in [0x84, 0x7fff]: the top set bit is 7..=14, so exponent is 0..=7.
    let exponent = 31 - magnitude.leading_zeros() as i32 - 7;
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    // All parts fit 8 bits: sign 0x80, exponent << 4 <= 0x70, mantissa <= 0x0f.
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Decodes one µ-law byte.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Encodes one 16-bit linear sample to A-law (G.711 §2, 13-bit magnitude, even bits inverted).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample) >> 3;
    let mask = if magnitude >= 0 {
        0xd5
    } else {
        magnitude = -magnitude - 1;
        0x55
    };
    // magnitude is in [0, 4095]; segment = position of the top bit above bit 4.
    let segment = (32 - (magnitude | 0x1f).leading_zeros() as i32 - 5).clamp(0, 7);
    let mantissa = if segment < 2 {
        (magnitude >> 1) & 0x0f
    } else {
        (magnitude >> segment) & 0x0f
    };
    // segment <= 7 and mantissa <= 15: the value fits 7 bits.
    ((segment << 4) | mantissa) as u8 ^ mask
}

/// Decodes one A-law byte.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Encodes `pcm` to µ-law into `out` (same length); returns the bytes written.
pub fn encode_ulaw(pcm: &[i16], out: &mut [u8]) -> usize {
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = linear_to_ulaw(s);
    }
    pcm.len().min(out.len())
}

/// Encodes `pcm` to A-law into `out` (same length); returns the bytes written.
pub fn encode_alaw(pcm: &[i16], out: &mut [u8]) -> usize {
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = linear_to_alaw(s);
    }
    pcm.len().min(out.len())
}

/// Decodes µ-law `bytes` into `out`; returns the samples written.
pub fn decode_ulaw(bytes: &[u8], out: &mut [i16]) -> usize {
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = ulaw_to_linear(b);
    }
    bytes.len().min(out.len())
}

/// Decodes A-law `bytes` into `out`; returns the samples written.
pub fn decode_alaw(bytes: &[u8], out: &mut [i16]) -> usize {
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = alaw_to_linear(b);
    }
    bytes.len().min(out.len())
}

const fn ulaw_decode_one(code: u8) -> i16 {
    let code = !code;
    let magnitude = ((((code & 0x0f) as i32) << 3) + ULAW_BIAS) << ((code & 0x70) >> 4);
    (if code & 0x80 != 0 {
        ULAW_BIAS - magnitude
    } else {
        magnitude - ULAW_BIAS
    }) as i16
}

const fn alaw_decode_one(code: u8) -> i16 {
    let code = code ^ 0x55;
    let mut magnitude = ((code & 0x0f) as i32) << 4;
    let segment = ((code & 0x70) >> 4) as i32;
    magnitude = match segment {
        0 => magnitude + 8,
        1 => magnitude + 0x108,
        _ => (magnitude + 0x108) << (segment - 1),
    };
    (if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }) as i16
}

const ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_one(i as u8);
        i += 1;
    }
    table
};

const ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode_one(i as u8);
        i += 1;
    }
    table
};

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32_635;

#[cfg(test)]
mod tests {
    use super::*;

    /// G.711 Table 2 (µ-law): decoder output magnitude for segment e, step m is
    /// `((2m + 33) << e) - 33` in 14-bit units; our 16-bit output is 4 times that.
    fn ulaw_reference(code: u8) -> i16 {
        let inverted = !code;
        let e = i32::from((inverted >> 4) & 0x07);
        let m = i32::from(inverted & 0x0f);
        let magnitude = (((2 * m + 33) << e) - 33) * 4;
        (if inverted & 0x80 != 0 {
            -magnitude
        } else {
            magnitude
        }) as i16
    }

    /// G.711 Table 1 (A-law): magnitude `2m + 1` in segment 0 and `(2m + 33) << (s - 1)` above,
    /// in 13-bit half-steps; our 16-bit output is 8 times that.
    fn alaw_reference(code: u8) -> i16 {
        let x = code ^ 0x55;
        let s = i32::from((x >> 4) & 0x07);
        let m = i32::from(x & 0x0f);
        let magnitude = if s == 0 {
            2 * m + 1
        } else {
            (2 * m + 33) << (s - 1)
        } * 8;
        (if x & 0x80 != 0 { magnitude } else { -magnitude }) as i16
    }

    #[test]
    fn decode_tables_match_the_standard_and_known_values() {
        for code in 0..=255u8 {
            assert_eq!(ulaw_to_linear(code), ulaw_reference(code), "ulaw {code:#x}");
            assert_eq!(alaw_to_linear(code), alaw_reference(code), "alaw {code:#x}");
        }
        assert_eq!(ulaw_to_linear(0x00), -32_124);
        assert_eq!(ulaw_to_linear(0x80), 32_124);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32_256);
        assert_eq!(alaw_to_linear(0x2a), -32_256);
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            let expected_ulaw = if code == 0x7f { 0xff } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected_ulaw,
                "{code:#x}"
            );
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "{code:#x}");
        }
    }

    #[test]
    fn encoding_quantizes_within_half_a_step() {
        // G.711 reconstructs each interval at its midpoint, so the error is at most half the
        // step of the code's segment (plus the bits below the codec's resolution: 2 for µ-law,
        // 3 for A-law).
        for x in i16::MIN..=i16::MAX {
            let code = linear_to_ulaw(x);
            let exponent = (!code >> 4) & 0x07;
            let half_step = 4i32 << exponent;
            let err = (i32::from(ulaw_to_linear(code)) - i32::from(x)).abs();
            let clipped = i32::from(x).abs() > 32_124;
            assert!(err <= half_step + 4 || clipped, "ulaw {x}: err {err}");

            let code = linear_to_alaw(x);
            let segment = ((code ^ 0x55) >> 4) & 0x07;
            let half_step = if segment < 2 { 8 } else { 4i32 << segment };
            let err = (i32::from(alaw_to_linear(code)) - i32::from(x)).abs();
            assert!(err <= half_step + 8, "alaw {x}: err {err}");
        }
    }

    #[test]
    fn slice_helpers_round_trip_a_ramp() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16_000) as i16).collect();
        let mut bytes = [0u8; 160];
        let mut back = [0i16; 160];
        assert_eq!(encode_ulaw(&pcm, &mut bytes), 160);
        assert_eq!(decode_ulaw(&bytes, &mut back), 160);
        for (a, b) in pcm.iter().zip(back.iter()) {
            assert!((i32::from(*a) - i32::from(*b)).abs() <= 512, "{a} {b}");
        }
        assert_eq!(encode_alaw(&pcm, &mut bytes), 160);
        assert_eq!(decode_alaw(&bytes, &mut back), 160);
        for (a, b) in pcm.iter().zip(back.iter()) {
            assert!((i32::from(*a) - i32::from(*b)).abs() <= 512, "{a} {b}");
        }
    }
}
