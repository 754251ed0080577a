//! Row softmax in f32 written so that the compiler vectorises it: a branch-free `exp` and
//! reductions over 16 independent lanes.

const LANES: usize = 16;

/// `exp(x)` for `x <= 0` (Cephes `expf` range reduction and polynomial, relative error below
/// 2e-7); exactly 0 below -87, where f32 would go denormal, and for `-inf`.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
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

/// Largest element (`-inf` for an empty slice).
fn max_of(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    lanes.iter().fold(tail, |m, &x| if x > m { x } else { m })
}

/// Replaces each element by `exp(x - max)` and returns their sum.
fn exp_and_sum(xs: &mut [f32], max: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk.iter_mut()) {
            let e = exp_nonpositive(*x - max);
            *x = e;
            *lane += e;
        }
    }
    let mut tail = 0.0;
    for x in chunks.into_remainder() {
        *x = exp_nonpositive(*x - max);
        tail += *x;
    }
    lanes.iter().sum::<f32>() + tail
}

/// Softmax of `xs` in place. Entries at `-inf` get probability 0; a row that is entirely
/// `-inf` becomes all zeros.
pub(crate) fn softmax_in_place(xs: &mut [f32]) {
    let max = max_of(xs);
    if max == f32::NEG_INFINITY {
        xs.fill(0.0);
        return;
    }
    let inv = 1.0 / exp_and_sum(xs, max);
    for x in xs.iter_mut() {
        *x *= inv;
    }
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
    fn softmax_matches_f64_and_zeroes_masked_entries() {
        let mut row: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 23) as f32 * 0.37 - 4.0)
            .collect();
        row[3] = f32::NEG_INFINITY;
        row[36] = f32::NEG_INFINITY;
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let total: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
        let want: Vec<f64> = row
            .iter()
            .map(|&x| (x as f64 - max).exp() / total)
            .collect();
        softmax_in_place(&mut row);
        for (g, w) in row.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-7, "{g} vs {w}");
        }
        assert_eq!(row[3], 0.0);
        assert_eq!(row[36], 0.0);
        let mut masked = vec![f32::NEG_INFINITY; 20];
        softmax_in_place(&mut masked);
        assert!(masked.iter().all(|&p| p == 0.0));
    }
}
