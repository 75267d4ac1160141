//! Helpers shared by the unit tests of several modules.

/// xorshift64*: deterministic, dependency-free randomness for the property tests, so
/// their cases are the same on every run.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (which must not be 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True once in `one_in` times, on average.
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// One element of `from` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

/// Number texts at the edges of what JSON readers map to integers and floats.
pub(crate) const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "-0.5",
    "1.0",
    "1e3",
    "1E+2",
    "2.5e-3",
    "-1e-300",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1e300",
    "-1e300",
    "1767225600.25",
];

/// The integer texts of [`EDGE_NUMBERS`] outside `i64::MIN..=u64::MAX`. simd-json refuses
/// a document holding one (RFC 8259 §6 lets a reader limit the range of numbers), where
/// serde_json reads it as a float.
pub(crate) const OUT_OF_RANGE_INTEGERS: &[&str] =
    &["-9223372036854775809", "18446744073709551616", "123456789012345678901234567890"];

/// Whether text made by [`json_text`] holds one of [`OUT_OF_RANGE_INTEGERS`] (no string
/// it makes contains their digits).
pub(crate) fn has_out_of_range_integer(text: &str) -> bool {
    OUT_OF_RANGE_INTEGERS.iter().any(|n| text.contains(n))
}

/// JSON string texts (with their quotes): control characters, escapes, non-ASCII.
pub(crate) const EDGE_STRINGS: &[&str] = &[
    r#""""#,
    r#"" ""#,
    r#""a""#,
    r#""openid email""#,
    r#""a\r\nX-Injected: 1""#,
    r#""nul\u0000byte""#,
    r#""tab\tok""#,
    r#""del\u007f""#,
    r#""\u00e9t\u00e9""#,
    "\"\u{e9}\u{1f600}\"",
    r#""line\u2028sep""#,
    r#""quote\"back\\slash""#,
    r#""  padded  ""#,
    r#""x\fy""#,
];

/// A random JSON value as text, nested at most `depth` levels: edge numbers and strings,
/// arrays and objects (whose keys may repeat).
pub(crate) fn json_text(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => rng.pick(&["null", "true", "false"]).to_string(),
        1 | 2 => rng.pick(EDGE_NUMBERS).to_string(),
        3 => (rng.next() as i64 >> rng.below(64)).to_string(),
        4 => rng.pick(EDGE_STRINGS).to_string(),
        5 => {
            let items: Vec<String> = (0..rng.below(4)).map(|_| json_text(rng, depth - 1)).collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let members: Vec<String> = (0..rng.below(4))
                .map(|_| format!(r#""{}":{}"#, rng.pick(&["a", "b", "roles", "id"]), json_text(rng, depth - 1)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
    }
}
