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

/// Whether `mark` is a position in `text`: on one of its lines, at one of that line's
/// characters or just past the last one (where an error at the end of a line points).
pub fn mark_inside(text: &str, mark: crate::config::Mark) -> bool {
    let Some(line) = text.split('\n').nth((mark.line as usize).wrapping_sub(1)) else { return false };
    mark.line >= 1 && mark.column >= 1 && mark.column as usize <= line.chars().count() + 1
}
