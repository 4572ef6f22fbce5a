//! Black-box tests of the `ngmedia` binary live in `tests/`.
