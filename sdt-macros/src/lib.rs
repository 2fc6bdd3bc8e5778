//! `probe!` and friends (not written yet).
