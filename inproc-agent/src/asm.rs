//! The hand-written parts: the trampoline a patched site calls (through its
//! stub), and the copies that may fault (arguments in memory, strings).
//!
//! A patched site is `call stub`, the stub is `push $site; jmp *trampoline`
//! (when counting, the stub counts by itself and returns). The cheap site
//! has already moved `%rsp` 128 bytes down (past the red zone), so the
//! pushes write nothing the function uses. The trampoline saves every
//! general register, the arithmetic flags and `%xmm0-15` (the site is
//! inline asm without clobbers, and `sdt-macros` says it preserves the
//! flags: the compiler may keep anything anywhere across it), calls
//! [`crate::hit::stap_sdt_inproc_hit`] with the frame on a 16-byte aligned
//! stack, restores and returns after the site.
//!
//! The flags are saved with `lahf; seto %al` and restored with
//! `add $0x7f,%al; sahf` (SF ZF AF PF CF and OF), not `pushfq/popfq`:
//! `popfq` alone costs more than the rest of a counting hit. The direction
//! flag is not touched and is taken to be clear, as the ABI has it outside
//! string instructions (the handler's copies rely on it).
//!
//! The frame, from low to high addresses (8 bytes each): r15 r14 r13 r12
//! rbp rbx r11 r10 r9 r8 rdi rsi rdx rcx flags rax site return-address;
//! `inproc_shm::frame` numbers the registers in this order, except
//! that `rax` (its number 14) is one word further.

use std::arch::global_asm;

/// Words in the frame before the site number and the return address.
pub const FRAME_SITE: usize = 16;
pub const FRAME_RETURN: usize = 17;
/// Bytes from the frame to `%rsp` as it was at the 5-byte nop.
pub const FRAME_BYTES: usize = 8 * 18;

global_asm!(
    r#"
    .text
    .p2align 4
    .globl stap_sdt_inproc_trampoline
    .hidden stap_sdt_inproc_trampoline
    .type stap_sdt_inproc_trampoline,@function
stap_sdt_inproc_trampoline:
    push %rax
    lahf
    seto %al
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rbx
    and $-16, %rsp
    sub $256, %rsp
    movaps %xmm0, 0(%rsp)
    movaps %xmm1, 16(%rsp)
    movaps %xmm2, 32(%rsp)
    movaps %xmm3, 48(%rsp)
    movaps %xmm4, 64(%rsp)
    movaps %xmm5, 80(%rsp)
    movaps %xmm6, 96(%rsp)
    movaps %xmm7, 112(%rsp)
    movaps %xmm8, 128(%rsp)
    movaps %xmm9, 144(%rsp)
    movaps %xmm10, 160(%rsp)
    movaps %xmm11, 176(%rsp)
    movaps %xmm12, 192(%rsp)
    movaps %xmm13, 208(%rsp)
    movaps %xmm14, 224(%rsp)
    movaps %xmm15, 240(%rsp)
    mov %rbx, %rdi
    call stap_sdt_inproc_hit@PLT
    movaps 0(%rsp), %xmm0
    movaps 16(%rsp), %xmm1
    movaps 32(%rsp), %xmm2
    movaps 48(%rsp), %xmm3
    movaps 64(%rsp), %xmm4
    movaps 80(%rsp), %xmm5
    movaps 96(%rsp), %xmm6
    movaps 112(%rsp), %xmm7
    movaps 128(%rsp), %xmm8
    movaps 144(%rsp), %xmm9
    movaps 160(%rsp), %xmm10
    movaps 176(%rsp), %xmm11
    movaps 192(%rsp), %xmm12
    movaps 208(%rsp), %xmm13
    movaps 224(%rsp), %xmm14
    movaps 240(%rsp), %xmm15
    mov %rbx, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $0x7f, %al
    sahf
    pop %rax
    lea 8(%rsp), %rsp
    ret
    .size stap_sdt_inproc_trampoline, .-stap_sdt_inproc_trampoline

    .p2align 4
    .globl stap_sdt_inproc_safe_begin
    .hidden stap_sdt_inproc_safe_begin
stap_sdt_inproc_safe_begin:

    .globl stap_sdt_inproc_copy
    .hidden stap_sdt_inproc_copy
    .type stap_sdt_inproc_copy,@function
stap_sdt_inproc_copy:
    xor %eax, %eax
1:
    cmp %rdx, %rax
    jae 2f
    movzbl (%rsi,%rax), %ecx
    mov %cl, (%rdi,%rax)
    inc %rax
    jmp 1b
2:
    xor %eax, %eax
    ret
    .size stap_sdt_inproc_copy, .-stap_sdt_inproc_copy

    .globl stap_sdt_inproc_strcpy
    .hidden stap_sdt_inproc_strcpy
    .type stap_sdt_inproc_strcpy,@function
stap_sdt_inproc_strcpy:
    xor %eax, %eax
    dec %rdx
1:
    cmp %rdx, %rax
    jae 2f
    movzbl (%rsi,%rax), %ecx
    mov %cl, (%rdi,%rax)
    test %cl, %cl
    jz 3f
    inc %rax
    jmp 1b
2:
    movb $0, (%rdi,%rax)
3:
    ret
    .size stap_sdt_inproc_strcpy, .-stap_sdt_inproc_strcpy

    .globl stap_sdt_inproc_safe_end
    .hidden stap_sdt_inproc_safe_end
stap_sdt_inproc_safe_end:

    .globl stap_sdt_inproc_safe_fault
    .hidden stap_sdt_inproc_safe_fault
stap_sdt_inproc_safe_fault:
    mov $-1, %rax
    ret
"#,
    options(att_syntax)
);

extern "C" {
    pub fn stap_sdt_inproc_trampoline();
    fn stap_sdt_inproc_safe_begin();
    fn stap_sdt_inproc_safe_end();
    fn stap_sdt_inproc_safe_fault();
    /// Copy `n` bytes; 0, or -1 when a page could not be read.
    fn stap_sdt_inproc_copy(dst: *mut u8, src: usize, n: usize) -> i64;
    /// Copy the string at `src` into `dst` (at most `max - 1` bytes and a
    /// NUL); its length, or -1 when a page could not be read.
    fn stap_sdt_inproc_strcpy(dst: *mut u8, src: usize, max: usize) -> i64;
}

/// Where a fault in a safe copy continues (the copy returns -1), if `rip`
/// is in one.
pub fn fault_continuation(rip: usize) -> Option<usize> {
    let begin = stap_sdt_inproc_safe_begin as *const () as usize;
    let end = stap_sdt_inproc_safe_end as *const () as usize;
    (begin..end)
        .contains(&rip)
        .then_some(stap_sdt_inproc_safe_fault as *const () as usize)
}

/// Read `n` (≤ 8) bytes at `address`, or `None` when they cannot be read.
#[inline]
pub fn read(address: usize, n: usize) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: the destination is our 8-byte local and n ≤ 8; a fault on
    // the source is caught by the SIGSEGV/SIGBUS handler (crate::signals),
    // which makes the copy return -1.
    let r = unsafe { stap_sdt_inproc_copy((&mut value as *mut u64).cast(), address, n.min(8)) };
    (r == 0).then_some(value)
}

/// Copy `n` bytes at `address` into `dst`; false when they cannot be read.
///
/// # Safety
/// `dst` must have room for `n` bytes.
#[inline]
pub unsafe fn copy(dst: *mut u8, address: usize, n: usize) -> bool {
    // SAFETY: the caller gives room for n bytes; faults on the source are
    // caught as in `read`.
    unsafe { stap_sdt_inproc_copy(dst, address, n) == 0 }
}

/// Copy the string at `address` (at most `max - 1` bytes and a NUL) into
/// `dst`; its length, or `None` when it cannot be read.
///
/// # Safety
/// `dst` must have room for `max` (≥ 1) bytes.
#[inline]
pub unsafe fn copy_str(dst: *mut u8, address: usize, max: usize) -> Option<usize> {
    // SAFETY: as `copy`, with room for max bytes.
    let n = unsafe { stap_sdt_inproc_strcpy(dst, address, max) };
    usize::try_from(n).ok()
}

/// The call stub of one site: `push $site; jmp *trampoline(%rip)`, or
/// with `counter`, a stub that adds one to it and returns.
pub const STUB_BYTES: usize = 32;

pub fn stub(site: u32, counter: Option<usize>) -> [u8; STUB_BYTES] {
    let mut code = [0xcc; STUB_BYTES];
    if let Some(counter) = counter {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            code[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&[0x50]); // push %rax
        put(&[0x9f]); // lahf
        put(&[0x0f, 0x90, 0xc0]); // seto %al
        put(&[0x50]); // push %rax (the flags)
        put(&[0x48, 0xb8]); // movabs $counter, %rax
        put(&(counter as u64).to_le_bytes());
        put(&[0xf0, 0x48, 0xff, 0x00]); // lock incq (%rax)
        put(&[0x58]); // pop %rax
        put(&[0x04, 0x7f]); // add $0x7f, %al (OF back)
        put(&[0x9e]); // sahf
        put(&[0x58]); // pop %rax
        put(&[0xc3]); // ret
        return code;
    }
    code[0] = 0x68; // push imm32 (sign-extended: sites are < 2^31)
    code[1..5].copy_from_slice(&site.to_le_bytes());
    code[5..11].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]); // jmp *0(%rip)
    code[11..19]
        .copy_from_slice(&(stap_sdt_inproc_trampoline as *const () as usize as u64).to_le_bytes());
    code
}
