//! BPF without a compiler or libbpf: an instruction encoder and the
//! `bpf(2)` calls. Programs are generated at attach time by
//! [`crate::lower`].

pub mod insn;
pub mod sys;
