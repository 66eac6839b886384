//! The random source of retry jitter, passed in so that tests control
//! jitter instead of tolerating it (the clock is `hookd_model::clock`).

/// A source of uniform numbers in `[0, 1)`, for jitter.
pub trait Random: Send + Sync + 'static {
    /// The next number.
    fn unit(&self) -> f64;
}

/// The thread-local generator of `rand`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRandom;

impl Random for ThreadRandom {
    fn unit(&self) -> f64 {
        rand::random::<f64>()
    }
}

/// Always the same number: no jitter surprises in tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedRandom(pub f64);

impl Random for FixedRandom {
    fn unit(&self) -> f64 {
        self.0
    }
}
