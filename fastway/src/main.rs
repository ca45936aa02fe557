//! The fastway gateway binary.
fn main() {}
