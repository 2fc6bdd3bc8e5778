//! Attaching uprobes to probe locations (not written yet).
