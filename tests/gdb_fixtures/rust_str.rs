// GDB plugin fixture: a Rust program whose probe passes a &str as pointer
// and length (no NUL), like HotSpot's strings, plus an i32 and a u64. The
// note is written with asm!, as a probe crate for Rust would.
use std::arch::asm;

#[inline(never)]
fn fire(text: &str, count: i32, big: u64) {
    unsafe {
        asm!(
            "990: nop",
            ".pushsection .note.stapsdt,\"\",\"note\"",
            ".balign 4",
            ".4byte 992f-991f, 994f-993f, 3",
            "991: .asciz \"stapsdt\"",
            "992: .balign 4",
            "993: .8byte 990b",
            ".8byte _.stapsdt.base",
            ".8byte 0",
            ".asciz \"rust\"",
            ".asciz \"text\"",
            ".asciz \"8@{ptr} 8@{len} -4@{count:e} 8@{big}\"",
            "994: .balign 4",
            ".popsection",
            ".ifndef _.stapsdt.base",
            ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat",
            ".weak _.stapsdt.base",
            ".hidden _.stapsdt.base",
            "_.stapsdt.base: .space 1",
            ".size _.stapsdt.base, 1",
            ".popsection",
            ".endif",
            ptr = in(reg) text.as_ptr(),
            len = in(reg) text.len(),
            count = in(reg) count,
            big = in(reg) big,
            options(att_syntax, nostack, preserves_flags, readonly),
        );
    }
}

fn main() {
    let owned = String::from("hello from rust, no NUL here");
    let text = &owned[..10];
    for i in 0..3i32 {
        let big = 0xfeed_0000_0000_0000u64 + i as u64;
        println!("rust text {text} {i} {big}");
        fire(text, i - 1, big);
    }
}
