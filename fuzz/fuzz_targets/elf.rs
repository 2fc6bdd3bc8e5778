//! ELF objects (32/64-bit, both byte orders) into the reader.
#![no_main]

#[path = "../checks/reader.rs"]
#[allow(dead_code)] // each target calls one of the shared checks
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::elf_object(data));
