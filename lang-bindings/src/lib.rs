//! Runtime tapsets (not written yet).
