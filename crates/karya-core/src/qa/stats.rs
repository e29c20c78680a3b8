//! The numerics QA rests on: the Beta distribution (posterior of an error rate after
//! Bernoulli outcomes), the Wilson score interval and the standard normal quantile.
//!
//! Written out here rather than pulled from a crate: they are short, well known (Lanczos,
//! Lentz's continued fraction, Acklam's rational approximation) and tested against values
//! computed independently.

/// Iterations of the continued fraction before giving up; it converges in far fewer for the
/// shape parameters QA uses (counts of reviews), this only bounds a pathological input.
const BETA_CF_ITERATIONS_MAX: u32 = 500;
/// Relative precision at which the continued fraction stops.
const BETA_CF_EPSILON: f64 = 1e-13;

/// Natural log of the gamma function (Lanczos approximation, g = 7, n = 9), for `x > 0`.
pub fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    assert!(x > 0.0, "ln_gamma of a non-positive number");
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (idx, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + idx as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized incomplete beta function I_x(a, b): the probability that a Beta(a, b)
/// variable is at most `x`.
pub fn beta_cdf(x: f64, a: f64, b: f64) -> f64 {
    assert!(a > 0.0 && b > 0.0, "beta shape parameters must be positive");
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast when x < (a + 1) / (a + b + 2); use the symmetry
    // I_x(a, b) = 1 - I_{1-x}(b, a) on the other side.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

/// Lentz's method for the continued fraction of the incomplete beta function.
fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=BETA_CF_ITERATIONS_MAX {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + even * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + even / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + odd * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + odd / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < BETA_CF_EPSILON {
            break;
        }
    }
    h
}

/// The standard normal quantile Φ⁻¹(p) for `0 < p < 1` (Acklam's approximation, relative
/// error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    assert!(p > 0.0 && p < 1.0, "normal quantile outside (0, 1)");
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// A closed interval of a proportion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// The Wilson score interval of a proportion after `successes` of `trials`, two-sided at
/// `confidence` (e.g. 0.95). With no trials it is the whole of `[0, 1]`.
pub fn wilson(successes: u64, trials: u64, confidence: f64) -> Interval {
    assert!(successes <= trials, "more successes than trials");
    assert!(
        confidence > 0.0 && confidence < 1.0,
        "confidence outside (0, 1)"
    );
    if trials == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn beta_cdf_matches_known_values() {
        // (x, a, b, I_x(a, b)); closed forms where they exist, otherwise values from a Simpson
        // integration of the density with 200 000 panels.
        let cases = [
            (0.3, 1.0, 1.0, 0.3),                      // uniform
            (0.05, 1.0, 31.0, 1.0 - 0.95f64.powi(31)), // Beta(1, b): 1 - (1-x)^b
            (0.5, 2.0, 2.0, 0.5),                      // symmetric
            (0.2, 2.0, 3.0, 0.1808),                   // 1 - (1-x)^3 (1 + 3x)
            (0.05, 3.0, 99.0, 0.885_796_1),
            (0.1, 17.0, 185.0, 0.798_962_6),
        ];
        for (x, a, b, expected) in cases {
            close(beta_cdf(x, a, b), expected, 1e-4);
        }
        assert_eq!(beta_cdf(0.0, 2.0, 5.0), 0.0);
        assert_eq!(beta_cdf(1.0, 2.0, 5.0), 1.0);
    }

    #[test]
    fn normal_quantiles() {
        close(normal_quantile(0.975), 1.959_964, 1e-6);
        close(normal_quantile(0.95), 1.644_854, 1e-6);
        close(normal_quantile(0.995), 2.575_829, 1e-6);
        close(normal_quantile(0.5), 0.0, 1e-9);
        close(normal_quantile(0.001), -3.090_232, 1e-6);
    }

    #[test]
    fn wilson_intervals() {
        // 0 of 100 at 95%: [0, z²/(n+z²)].
        let none = wilson(0, 100, 0.95);
        close(none.low, 0.0, 1e-12);
        close(none.high, 0.036_993, 1e-5);
        // 8 of 100 at 95%.
        let some = wilson(8, 100, 0.95);
        close(some.low, 0.041_09, 1e-4);
        close(some.high, 0.150_00, 1e-4);
        assert_eq!(
            wilson(0, 0, 0.95),
            Interval {
                low: 0.0,
                high: 1.0
            }
        );
        let all = wilson(50, 50, 0.9);
        assert!(all.high == 1.0 && all.low > 0.9 && all.contains(1.0));
    }
}
