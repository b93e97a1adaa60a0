//! Branch-free f32 `exp`, `log1p` and `tanh` that the compiler vectorises, and the macro that
//! compiles a loop once per x86 instruction set and picks one at run time.
//!
//! libm's `expf`/`log1pf` are scalar calls: in the Bernoulli log-likelihood of the canonical
//! model (100,352 of each per minibatch) they took ~10% of an epoch. These are Cephes' single
//! precision polynomials (Moshier), written without calls or branches so that a loop over them
//! becomes AVX2/FMA (or AVX-512) code; their error is checked against f64 in the tests below.

/// `fn name(args) -> out { body }` three times over: the body itself, and the same body
/// compiled with AVX2+FMA and with AVX-512, chosen at run time by what the CPU has. The body
/// must only call `#[inline(always)]` functions, so that they are compiled with the features.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? { generic($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? { generic($($arg),*) }
                match $crate::engine::fused::math::level() {
                    // SAFETY: level() saw these features on this CPU (is_x86_feature_detected).
                    $crate::engine::fused::math::Level::V4 => return unsafe { v4($($arg),*) },
                    // SAFETY: as above: level() saw AVX2 and FMA on this CPU.
                    $crate::engine::fused::math::Level::V3 => return unsafe { v3($($arg),*) },
                    $crate::engine::fused::math::Level::Baseline => {}
                }
            }
            generic($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// The instruction sets the elementwise loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// x86-64-v4: AVX-512 (F, VL) with AVX2 and FMA.
    V4,
    /// x86-64-v3: AVX2 and FMA.
    V3,
    /// Whatever the build targets (SSE2 on x86-64).
    Baseline,
}

/// What this CPU supports, detected once. `AEVB_SIMD=v3|baseline` caps it (to compare).
pub fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("AEVB_SIMD").unwrap_or_default();
        #[cfg(target_arch = "x86_64")]
        {
            let v3 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let v4 =
                v3 && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl");
            match cap.as_str() {
                "baseline" => Level::Baseline,
                "v3" if v3 => Level::V3,
                _ if v4 => Level::V4,
                _ if v3 => Level::V3,
                _ => Level::Baseline,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = cap;
            Level::Baseline
        }
    })
}

/// Name of the detected level, for records and `runner plan`.
pub fn level_name() -> &'static str {
    match level() {
        Level::V4 => "avx512",
        Level::V3 => "avx2+fma",
        Level::Baseline => "baseline",
    }
}

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two so that n·ln2 is subtracted without rounding error (Cephes).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// e^x, relative error below 2e-7 on [-87, 88]; 0 below, +inf above.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(-87.3, 88.7);
    // Round to nearest by the 1.5·2^23 trick: `floor` is a libm call below SSE4.1.
    const ROUND: f32 = 12_582_912.0;
    let n = (xc * LOG2_E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    // 2^n through the exponent bits; n ∈ [-126, 128] after the clamp, so split it in two.
    let n = n as i32;
    let half = n >> 1;
    let s1 = f32::from_bits(((half + 127) as u32) << 23);
    let s2 = f32::from_bits(((n - half + 127) as u32) << 23);
    let out = y * s1 * s2;
    let out = if x < -87.3 { 0.0 } else { out };
    if x > 88.7 { f32::INFINITY } else { out }
}

/// ln(w) for w in [0.5, 4] (enough for 1 + u with u ∈ [0, 1]; Cephes' logf polynomial).
#[inline(always)]
fn ln_near_one(w: f32) -> f32 {
    let bits = w.to_bits();
    let mut e = ((bits >> 23) as i32 - 126) as f32;
    // Mantissa in [0.5, 1), then moved to [√½, √2).
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e = if small { e - 1.0 } else { e };
    m = if small { m + m } else { m };
    let t = m - 1.0;
    let z = t * t;
    let mut p = 7.037_683_6e-2f32;
    p = p * t - 1.151_461e-1;
    p = p * t + 1.167_699_9e-1;
    p = p * t - 1.242_014_1e-1;
    p = p * t + 1.424_932_3e-1;
    p = p * t - 1.666_805_8e-1;
    p = p * t + 2.000_071_4e-1;
    p = p * t - 2.499_999_4e-1;
    p = p * t + 3.333_333e-1;
    let mut y = p * t * z;
    y += LN2_LO * e;
    y -= 0.5 * z;
    t + y + LN2_HI * e
}

/// ln(1 + u) for u ∈ [0, 1] (what softplus needs: u = e^(−|l|)), accurate for tiny u too:
/// w = 1 + u is rounded, and the rounding is corrected to first order.
#[inline(always)]
pub fn log1p_unit(u: f32) -> f32 {
    let w = 1.0 + u;
    let err = (w - 1.0) - u;
    ln_near_one(w) - err / w
}

/// tanh(x), absolute error below 3e-7.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // Small |x|: Cephes' odd polynomial; else 1 − 2/(e^{2|x|} + 1), with the sign put back.
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_909e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    let e = exp(2.0 * a.min(9.0));
    let large = 1.0 - 2.0 / (e + 1.0);
    let large = if x < 0.0 { -large } else { large };
    if a < 0.625 { small } else { large }
}

/// erf(x), absolute error below 3e-7 (Abramowitz & Stegun 7.1.26, whose own error is
/// 1.5e-7, plus f32 rounding): what the exact GELU needs.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let mut p = 1.061_405_4f32;
    p = p * t - 1.453_152_1;
    p = p * t + 1.421_413_7;
    p = p * t - 0.284_496_74;
    p = p * t + 0.254_829_6;
    let y = 1.0 - p * t * exp(-a * a);
    if x < 0.0 { -y } else { y }
}

/// The exact GELU, x·Φ(x), and its derivative Φ(x) + x·φ(x) (burn's `gelu`).
#[inline(always)]
pub fn gelu_and_slope(x: f32) -> (f32, f32) {
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    // 1/√(2π)
    let pdf = 0.398_942_3 * exp(-0.5 * x * x);
    (x * cdf, cdf + x * pdf)
}

/// softplus(l) = ln(1 + e^l) and the logistic σ(l), sharing one exp.
#[inline(always)]
pub fn softplus_sigmoid(l: f32) -> (f32, f32) {
    let e = exp(-l.abs());
    let softplus = l.max(0.0) + log1p_unit(e);
    let r = 1.0 / (1.0 + e);
    let sigmoid = if l >= 0.0 { r } else { e * r };
    (softplus, sigmoid)
}

/// softplus(l) = ln(1 + e^l), exactly as [`softplus_sigmoid`] computes it.
#[inline(always)]
pub fn softplus(l: f32) -> f32 {
    l.max(0.0) + log1p_unit(exp(-l.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| (lo + (hi - lo) * i as f64 / n as f64) as f32)
    }

    #[test]
    fn exp_matches_f64_to_two_ulp() {
        for x in grid(-87.0, 88.0, 200_000) {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                ((got - want) / want).abs() < 2.5e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn log1p_matches_f64_including_tiny_arguments() {
        let tiny = (0..200).map(|i| 10f32.powf(-30.0 + i as f32 * 0.15));
        for u in grid(0.0, 1.0, 100_000).chain(tiny) {
            let want = (u as f64).ln_1p();
            let got = log1p_unit(u) as f64;
            let tol = 2.5e-7 * want.abs().max(1e-38);
            assert!((got - want).abs() <= tol, "log1p({u}) = {got}, want {want}");
        }
    }

    #[test]
    fn tanh_matches_f64() {
        for x in grid(-20.0, 20.0, 200_000) {
            let want = (x as f64).tanh();
            let got = tanh(x) as f64;
            assert!((got - want).abs() < 3e-7, "tanh({x}) = {got}, want {want}");
            // Relative accuracy near zero too (where 1 − 2/(e^2x + 1) would cancel).
            if x.abs() < 0.625 && x != 0.0 {
                assert!(((got - want) / want).abs() < 3e-7, "tanh({x})");
            }
        }
    }

    #[test]
    fn softplus_and_sigmoid_match_f64() {
        for l in grid(-60.0, 60.0, 100_000) {
            let (sp, sg) = softplus_sigmoid(l);
            let l64 = l as f64;
            let want_sp = l64.max(0.0) + (-l64.abs()).exp().ln_1p();
            let want_sg = 1.0 / (1.0 + (-l64).exp());
            assert!(
                (sp as f64 - want_sp).abs() <= 3e-7 * want_sp.max(1e-30) + 1e-37,
                "softplus({l})"
            );
            assert!(
                (sg as f64 - want_sg).abs() <= 3e-7 * want_sg,
                "sigmoid({l})"
            );
        }
    }

    multiversion! {
        fn exp_all(xs: &[f32], out: &mut [f32]) {
            for (o, &x) in out.iter_mut().zip(xs) {
                *o = exp(x);
            }
        }
    }

    #[test]
    fn the_dispatched_loop_computes_what_the_scalar_function_does() {
        let xs: Vec<f32> = grid(-80.0, 80.0, 10_007).collect();
        let mut out = vec![0.0; xs.len()];
        exp_all(&xs, &mut out);
        for (x, o) in xs.iter().zip(&out) {
            // Rust does not contract a·b + c into an FMA: every level computes the same bits.
            assert_eq!(o.to_bits(), exp(*x).to_bits(), "{x}");
        }
    }
}
