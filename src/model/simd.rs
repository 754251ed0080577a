//! Vectorisable f32 building blocks shared by the CPU kernels.

/// `exp(x)` for `x <= 0` (Cephes `expf` range reduction and polynomial, relative error below
/// 2e-7); exactly 0 below -87, where f32 would go denormal, and for `-inf`.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let clamped = if x < -87.0 { -87.0 } else { x };
    let biased = clamped * LOG2E + ROUND;
    let k = biased - ROUND;
    let k_int = biased.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = clamped - k * LN2_HI - k * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * (r * r) + r + 1.0;
    let scale = f32::from_bits(((k_int + 127) as u32) << 23);
    if x < -87.0 { 0.0 } else { e_r * scale }
}

/// `gate = silu(gate) * up` element-wise, written for the vectoriser.
#[inline(always)]
pub(crate) fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (o, &u) in gate.iter_mut().zip(up) {
        let g = *o;
        // sigmoid(g) from exp(-|g|) <= 1, which cannot overflow.
        let e = exp_nonpositive(-g.abs());
        let sigmoid = if g >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        };
        *o = g * sigmoid * u;
    }
}

/// Dot product over 16 independent lanes (vectorisable; summation order differs from a serial
/// loop by rounding only).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for ((lane, x), y) in lanes.iter_mut().zip(ca).zip(cb) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_its_domain() {
        let mut worst = 0f64;
        let mut x = 0f32;
        while x > -87.0 {
            let want = (x as f64).exp();
            let got = exp_nonpositive(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x -= 0.000_37;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-90.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn dot_matches_f64() {
        let a: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.11).cos()).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - want).abs() < 1e-4);
    }

    #[test]
    fn silu_mul_matches_f64() {
        let gate: Vec<f32> = (0..401).map(|i| (i as f32 - 200.0) * 0.13).collect();
        let up: Vec<f32> = (0..401)
            .map(|i| ((i * 31) % 17) as f32 * 0.25 - 2.0)
            .collect();
        let mut out = gate.clone();
        silu_mul(&mut out, &up);
        for ((o, g), u) in out.iter().zip(&gate).zip(&up) {
            let (g, u) = (*g as f64, *u as f64);
            let want = g / (1.0 + (-g).exp()) * u;
            assert!(
                (*o as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{o} vs {want}"
            );
        }
    }
}
