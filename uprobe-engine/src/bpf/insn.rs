//! Encoding eBPF instructions: just the handful the argument programs use.
//!
//! Each instruction is 8 bytes: opcode, dst/src register nibbles, a signed
//! 16-bit offset and a signed 32-bit immediate (a 64-bit immediate load
//! takes two slots). The names follow the kernel's `BPF_*` macros.

/// One instruction slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    /// Set a jump's offset.
    pub fn set_off(&mut self, off: i16) {
        self.off = off;
    }

    /// A jump's offset (not for calls and exits).
    pub fn jump_offset(&self) -> Option<i16> {
        let class = self.code & 0x07;
        let op = self.code & 0xf0;
        (class == JMP && op != CALL && op != EXIT).then_some(self.off)
    }
}

/// A register: r0 return value, r1-r5 helper arguments (clobbered by
/// calls), r6-r9 preserved across calls, r10 the read-only frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
pub const R10: Reg = Reg(10);

// Instruction classes.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
// Sizes.
const W: u8 = 0x00;
const B: u8 = 0x10;
const DW: u8 = 0x18;
// Modes.
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const ATOMIC: u8 = 0xc0;
// Sources.
const K: u8 = 0x00;
const X: u8 = 0x08;
// ALU operations.
const ADD: u8 = 0x00;
const SUB: u8 = 0x10;
const MUL: u8 = 0x20;
const DIV: u8 = 0x30;
const OR: u8 = 0x40;
const AND: u8 = 0x50;
const LSH: u8 = 0x60;
const RSH: u8 = 0x70;
const NEG: u8 = 0x80;
const MOD: u8 = 0x90;
const XOR: u8 = 0xa0;
const MOV: u8 = 0xb0;
const ARSH: u8 = 0xc0;
// Jumps.
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JGT: u8 = 0x20;
const JGE: u8 = 0x30;
const JNE: u8 = 0x50;
const JSGT: u8 = 0x60;
const JSGE: u8 = 0x70;
const JLT: u8 = 0xa0;
const JLE: u8 = 0xb0;
const JSLT: u8 = 0xc0;
const JSLE: u8 = 0xd0;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;

/// `src_reg` of a 64-bit immediate load that names a map by its fd.
const PSEUDO_MAP_FD: u8 = 1;

fn insn(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src.0 << 4) | (dst.0 & 0x0f),
        off,
        imm,
    }
}

/// `dst = src` (64-bit).
pub fn mov(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | MOV | X, dst, src, 0, 0)
}

/// `dst = imm` (sign-extended to 64 bits).
pub fn mov_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | MOV | K, dst, R0, 0, imm)
}

/// `dst = (u32)dst`: keep the low half, zero the high one.
pub fn zero_extend32(dst: Reg) -> Insn {
    insn(ALU | MOV | X, dst, dst, 0, 0)
}

pub fn add(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | ADD | X, dst, src, 0, 0)
}

pub fn add_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | ADD | K, dst, R0, 0, imm)
}

pub fn or(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | OR | X, dst, src, 0, 0)
}

pub fn or_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | OR | K, dst, R0, 0, imm)
}

pub fn lsh_imm(dst: Reg, bits: i32) -> Insn {
    insn(ALU64 | LSH | K, dst, R0, 0, bits)
}

pub fn rsh_imm(dst: Reg, bits: i32) -> Insn {
    insn(ALU64 | RSH | K, dst, R0, 0, bits)
}

/// A 64-bit ALU operation between registers (`dst op= src`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alu {
    Add,
    Sub,
    Mul,
    /// Signed division (BPF v4 `sdiv`); x / 0 is 0.
    SDiv,
    /// Signed remainder (BPF v4 `smod`); x % 0 is x.
    SMod,
    Or,
    And,
    Xor,
    Lsh,
    /// Arithmetic (sign-keeping) right shift, as C's `>>` on signed values.
    Arsh,
    Rsh,
}

/// `dst op= src` (64-bit).
pub fn alu(op: Alu, dst: Reg, src: Reg) -> Insn {
    // Signed division is the unsigned opcode with offset 1.
    let (code, off) = match op {
        Alu::Add => (ADD, 0),
        Alu::Sub => (SUB, 0),
        Alu::Mul => (MUL, 0),
        Alu::SDiv => (DIV, 1),
        Alu::SMod => (MOD, 1),
        Alu::Or => (OR, 0),
        Alu::And => (AND, 0),
        Alu::Xor => (XOR, 0),
        Alu::Lsh => (LSH, 0),
        Alu::Arsh => (ARSH, 0),
        Alu::Rsh => (RSH, 0),
    };
    insn(ALU64 | code | X, dst, src, off, 0)
}

/// `dst op= imm` (64-bit, the immediate sign-extended).
pub fn alu_imm(op: Alu, dst: Reg, imm: i32) -> Insn {
    let mut i = alu(op, dst, R0);
    i.code &= !X;
    i.regs &= 0x0f;
    i.imm = imm;
    i
}

/// `dst = -dst`.
pub fn neg(dst: Reg) -> Insn {
    insn(ALU64 | NEG | K, dst, R0, 0, 0)
}

pub fn and_imm(dst: Reg, imm: i32) -> Insn {
    alu_imm(Alu::And, dst, imm)
}

/// A jump condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cond {
    Eq,
    Ne,
    /// Signed comparisons.
    SGt,
    SGe,
    SLt,
    SLe,
    /// Unsigned comparisons.
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cond {
    fn code(self) -> u8 {
        match self {
            Cond::Eq => JEQ,
            Cond::Ne => JNE,
            Cond::SGt => JSGT,
            Cond::SGe => JSGE,
            Cond::SLt => JSLT,
            Cond::SLe => JSLE,
            Cond::Gt => JGT,
            Cond::Ge => JGE,
            Cond::Lt => JLT,
            Cond::Le => JLE,
        }
    }
}

/// `if dst cond src goto +off` (64-bit).
pub fn jump_if(cond: Cond, dst: Reg, src: Reg, off: i16) -> Insn {
    insn(JMP | cond.code() | X, dst, src, off, 0)
}

/// `if dst cond imm goto +off` (64-bit, the immediate sign-extended).
pub fn jump_if_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Insn {
    insn(JMP | cond.code() | K, dst, R0, off, imm)
}

/// `dst = imm64`: two slots.
pub fn load_imm64(dst: Reg, value: u64) -> [Insn; 2] {
    [
        insn(LD | DW | IMM, dst, R0, 0, value as u32 as i32),
        insn(0, R0, R0, 0, (value >> 32) as u32 as i32),
    ]
}

/// `dst = &map` for the map with this fd: two slots.
pub fn load_map(dst: Reg, map_fd: i32) -> [Insn; 2] {
    [
        insn(LD | DW | IMM, dst, Reg(PSEUDO_MAP_FD), 0, map_fd),
        insn(0, R0, R0, 0, 0),
    ]
}

/// `dst = *(u64 *)(src + off)`.
pub fn load64(dst: Reg, src: Reg, off: i16) -> Insn {
    insn(LDX | DW | MEM, dst, src, off, 0)
}

/// `dst = *(u8 *)(src + off)`.
pub fn load8(dst: Reg, src: Reg, off: i16) -> Insn {
    insn(LDX | B | MEM, dst, src, off, 0)
}

/// `dst = *(u32 *)(src + off)`.
pub fn load32(dst: Reg, src: Reg, off: i16) -> Insn {
    insn(LDX | W | MEM, dst, src, off, 0)
}

/// `*(u64 *)(dst + off) = src`.
pub fn store64(dst: Reg, off: i16, src: Reg) -> Insn {
    insn(STX | DW | MEM, dst, src, off, 0)
}

/// `*(u32 *)(dst + off) = src`.
pub fn store32(dst: Reg, off: i16, src: Reg) -> Insn {
    insn(STX | W | MEM, dst, src, off, 0)
}

/// `lock *(u64 *)(dst + off) += src`.
pub fn atomic_add64(dst: Reg, off: i16, src: Reg) -> Insn {
    insn(STX | DW | ATOMIC, dst, src, off, i32::from(ADD))
}

/// `r0 = cmpxchg((u64 *)(dst + off), r0, src)`: stores `src` when the
/// word equals R0; R0 becomes the word's old value.
pub fn atomic_cmpxchg64(dst: Reg, off: i16, src: Reg) -> Insn {
    // BPF_CMPXCHG = 0xf0 | BPF_FETCH.
    insn(STX | DW | ATOMIC, dst, src, off, 0xf1)
}

/// `*(u64 *)(dst + off) = imm` (sign-extended).
pub fn store64_imm(dst: Reg, off: i16, imm: i32) -> Insn {
    insn(ST | DW | MEM, dst, R0, off, imm)
}

/// `*(u32 *)(dst + off) = imm`.
pub fn store32_imm(dst: Reg, off: i16, imm: i32) -> Insn {
    insn(ST | W | MEM, dst, R0, off, imm)
}

/// `if dst == imm goto +off`.
pub fn jump_if_eq(dst: Reg, imm: i32, off: i16) -> Insn {
    insn(JMP | JEQ | K, dst, R0, off, imm)
}

/// `if dst != imm goto +off`.
pub fn jump_if_ne(dst: Reg, imm: i32, off: i16) -> Insn {
    insn(JMP | JNE | K, dst, R0, off, imm)
}

/// `if dst > imm goto +off` (unsigned).
pub fn jump_if_gt(dst: Reg, imm: i32, off: i16) -> Insn {
    insn(JMP | JGT | K, dst, R0, off, imm)
}

/// `goto +off`.
pub fn jump(off: i16) -> Insn {
    insn(JMP | JA, R0, R0, off, 0)
}

/// `if (s64)dst > imm goto +off`.
pub fn jump_if_sgt(dst: Reg, imm: i32, off: i16) -> Insn {
    insn(JMP | JSGT | K, dst, R0, off, imm)
}

/// `if dst <= imm goto +off` (unsigned).
pub fn jump_if_le(dst: Reg, imm: i32, off: i16) -> Insn {
    insn(JMP | JLE | K, dst, R0, off, imm)
}

/// Call a kernel helper by its number.
pub fn call(helper: i32) -> Insn {
    insn(JMP | CALL, R0, R0, 0, helper)
}

pub fn exit() -> Insn {
    insn(JMP | EXIT, R0, R0, 0, 0)
}

/// Helper numbers (`enum bpf_func_id`, stable kernel ABI).
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const KTIME_GET_NS: i32 = 5;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const GET_CURRENT_COMM: i32 = 16;
    pub const PERF_EVENT_OUTPUT: i32 = 25;
    pub const GET_STACKID: i32 = 27;
    pub const GET_STACK: i32 = 67;
    pub const PROBE_READ_USER: i32 = 112;
    pub const PROBE_READ_KERNEL: i32 = 113;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_SUBMIT: i32 = 132;
    pub const RINGBUF_DISCARD: i32 = 133;
    pub const RINGBUF_QUERY: i32 = 134;
    /// Sleepable programs only: faults the pages in.
    pub const COPY_FROM_USER: i32 = 148;
    pub const GET_ATTACH_COOKIE: i32 = 174;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(i: Insn) -> [u8; 8] {
        // SAFETY: Insn is repr(C), 8 bytes of plain integers.
        unsafe { std::mem::transmute(i) }
    }

    #[test]
    fn encodings_match_the_kernel_macros() {
        // BPF_MOV64_REG(BPF_REG_6, BPF_REG_1) = bf 16 00 00 00 00 00 00
        assert_eq!(bytes(mov(R6, R1)), [0xbf, 0x16, 0, 0, 0, 0, 0, 0]);
        // BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_6, 80) = 79 61 50 00 ...
        assert_eq!(bytes(load64(R1, R6, 80)), [0x79, 0x61, 80, 0, 0, 0, 0, 0]);
        // BPF_EXIT_INSN() = 95 00 ...
        assert_eq!(bytes(exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        // BPF_ST_MEM(BPF_W, BPF_REG_10, -4, 0) = 62 0a fc ff 00 00 00 00
        assert_eq!(
            bytes(store32_imm(R10, -4, 0)),
            [0x62, 0x0a, 0xfc, 0xff, 0, 0, 0, 0]
        );
        // BPF_LD_MAP_FD(BPF_REG_1, 7) = 18 11 00 00 07 00 00 00, 00 ...
        let [a, b] = load_map(R1, 7);
        assert_eq!(bytes(a), [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(bytes(b), [0; 8]);
        // The high half of a 64-bit immediate goes to the second slot.
        let [lo, hi] = load_imm64(R3, 0x1_0000_0002);
        assert_eq!((lo.imm, hi.imm), (2, 1));
        // BPF_ATOMIC_OP(BPF_DW, BPF_ADD, r0, r1, 0) = db 10 00 00 00 00 00 00
        assert_eq!(
            bytes(atomic_add64(R0, 0, R1)),
            [0xdb, 0x10, 0, 0, 0, 0, 0, 0]
        );
        // BPF_JMP_IMM(BPF_JLE, r0, 4096, 1) = b5 00 01 00 00 10 00 00
        assert_eq!(
            bytes(jump_if_le(R0, 4096, 1)),
            [0xb5, 0, 1, 0, 0, 0x10, 0, 0]
        );
        // BPF_ALU64_REG(BPF_OR, r1, r9) = 4f 91 ...
        assert_eq!(bytes(or(R1, R9)), [0x4f, 0x91, 0, 0, 0, 0, 0, 0]);
        // BPF_ATOMIC_OP(BPF_DW, BPF_CMPXCHG, r7, r1, 8) = db 17 08 00 f1 00 00 00
        assert_eq!(
            bytes(atomic_cmpxchg64(R7, 8, R1)),
            [0xdb, 0x17, 8, 0, 0xf1, 0, 0, 0]
        );
        // BPF_ALU64_REG(BPF_SUB, r0, r1) = 1f 10 ...
        assert_eq!(bytes(alu(Alu::Sub, R0, R1)), [0x1f, 0x10, 0, 0, 0, 0, 0, 0]);
        // sdiv r0, r1: BPF_ALU64 | BPF_DIV | BPF_X with off 1 = 3f 10 01 00 ...
        assert_eq!(
            bytes(alu(Alu::SDiv, R0, R1)),
            [0x3f, 0x10, 1, 0, 0, 0, 0, 0]
        );
        // BPF_ALU64_IMM(BPF_AND, r1, 0xffff) = 57 01 00 00 ff ff 00 00
        assert_eq!(
            bytes(and_imm(R1, 0xffff)),
            [0x57, 1, 0, 0, 0xff, 0xff, 0, 0]
        );
        // BPF_ALU64_IMM(BPF_ARSH, r0, 32) = c7 00 00 00 20 00 00 00
        assert_eq!(
            bytes(alu_imm(Alu::Arsh, R0, 32)),
            [0xc7, 0, 0, 0, 32, 0, 0, 0]
        );
        // BPF_JMP_REG(BPF_JSLT, r0, r1, 2) = cd 10 02 00 ...
        assert_eq!(
            bytes(jump_if(Cond::SLt, R0, R1, 2)),
            [0xcd, 0x10, 2, 0, 0, 0, 0, 0]
        );
        // BPF_LDX_MEM(BPF_B, r2, r1, 3) = 71 12 03 00 ...
        assert_eq!(bytes(load8(R2, R1, 3)), [0x71, 0x12, 3, 0, 0, 0, 0, 0]);
        // BPF_ALU64_IMM(BPF_NEG, r0, 0) = 87 00 ...
        assert_eq!(bytes(neg(R0)), [0x87, 0, 0, 0, 0, 0, 0, 0]);
        // BPF_ALU32_REG(BPF_MOV, r3, r3) = bc 33 ...
        assert_eq!(bytes(zero_extend32(R3)), [0xbc, 0x33, 0, 0, 0, 0, 0, 0]);
    }
}
