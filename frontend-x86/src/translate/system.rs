//! System instructions: segment and control registers, descriptor tables,
//! MSRs, far transfers, interrupts, cpuid, rdtsc, hlt.
//!
//! Those that change how code is translated or need to read guest
//! descriptors end the block with `exit_status` and are finished in Rust by
//! [`crate::cpu`]; the rest are translated inline.

use std::mem::offset_of;
use std::sync::OnceLock;
use std::time::Instant;

use accel_tcg::ir::Block;
use iced_x86::{Code, Mnemonic, OpKind};

use super::{Ctx, Flow, H, Res, Unsupported, alu::reg_of, stack::seg_index, status};
use crate::state::{self, X86State};

/// Everything not covered by the other instruction classes.
pub fn system(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    use Mnemonic as M;
    match m {
        M::Hlt => {
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            Ok(c.exit(status::HLT))
        }
        M::Int => Ok(c.exit(status::SOFT_INT | (c.i.immediate(0) & 0xff) << 16)),
        M::Int3 => Ok(c.exit(status::SOFT_INT | 3 << 16 | 1 << 25)),
        M::Int1 => Ok(c.raise(status::DB, None)),
        M::Ud0 | M::Ud1 | M::Ud2 => Ok(c.raise(status::UD, None)),
        M::Cpuid => {
            let h = c.helper(H::Cpuid);
            c.b.call_helper(None, h, &[]);
            Ok(Flow::Next)
        }
        M::Rdtsc | M::Rdtscp => {
            let h = c.helper(H::Rdtsc);
            c.b.call_helper(None, h, &[]);
            if m == M::Rdtscp {
                let aux = c.ld(offset_of!(X86State, tsc_aux) as u32);
                c.write_reg(1, 4, false, aux);
            }
            Ok(Flow::Next)
        }
        M::Rdmsr | M::Wrmsr => {
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            Ok(c.exit(if m == M::Rdmsr {
                status::RDMSR
            } else {
                status::WRMSR
            }))
        }
        M::Lgdt | M::Lidt => {
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            let a = c.ea();
            let limit = c.qld(a, 2, false);
            let a2 = c.op2i(Block::add, a, 2);
            let mut base = c.qld(a2, if c.code64() { 8 } else { 4 }, false);
            if matches!(c.i.code(), Code::Lgdt_m1632_16 | Code::Lidt_m1632_16) {
                // SDM Vol. 2A, LGDT/LIDT: with a 16-bit operand size only a
                // 24-bit base is loaded (the fourth byte is read, then
                // ignored).
                base = c.op2i(Block::and, base, 0xff_ffff);
            }
            let (b_off, l_off) = if m == M::Lgdt {
                (state::GDT_BASE_OFF, state::GDT_LIMIT_OFF)
            } else {
                (state::IDT_BASE_OFF, state::IDT_LIMIT_OFF)
            };
            c.st(base, b_off);
            c.st(limit, l_off);
            Ok(Flow::Next)
        }
        M::Sgdt | M::Sidt => {
            let (b_off, l_off) = if m == M::Sgdt {
                (state::GDT_BASE_OFF, state::GDT_LIMIT_OFF)
            } else {
                (state::IDT_BASE_OFF, state::IDT_LIMIT_OFF)
            };
            let a = c.ea();
            let limit = c.ld(l_off);
            let base = c.ld(b_off);
            c.qst(a, 2, limit);
            let a2 = c.op2i(Block::add, a, 2);
            c.qst(a2, if c.code64() { 8 } else { 4 }, base);
            Ok(Flow::Next)
        }
        M::Lldt | M::Ltr => {
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            let v = c.read_op(0, 2)?;
            c.st(v, state::scratch_off(0));
            Ok(c.exit(status::LOAD_SYS_SEG | ((m == M::Ltr) as u64) << 16))
        }
        M::Sldt | M::Str => {
            let off = if m == M::Str {
                offset_of!(X86State, tr)
            } else {
                offset_of!(X86State, ldtr)
            };
            let v = c.ld(off as u32);
            let bytes = if c.i.op_kind(0) == OpKind::Memory {
                2
            } else {
                c.op_size(0)
            };
            let l = c.loc(0)?;
            c.store(l, bytes, v);
            Ok(Flow::Next)
        }
        M::Smsw => {
            let v = c.ld(state::CR0_OFF);
            let bytes = if c.i.op_kind(0) == OpKind::Memory {
                2
            } else {
                c.op_size(0)
            };
            let l = c.loc(0)?;
            c.store(l, bytes, v);
            Ok(Flow::Next)
        }
        M::Lmsw => {
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            // SDM Vol. 2A, LMSW: only CR0.PE, MP, EM and TS are loaded, and
            // PE can be set but not cleared. Finished as a CR0 write.
            let v = c.read_op(0, 2)?;
            let low = c.op2i(Block::and, v, 0xf);
            let cr0 = c.ld(state::CR0_OFF);
            let keep = c.op2i(Block::and, cr0, !0xe);
            let n = c.op2(Block::or, keep, low);
            c.st(n, state::scratch_off(0));
            Ok(c.exit(status::MOV_TO_CR))
        }
        M::Invlpg => {
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            let a = c.ea();
            c.st(a, state::scratch_off(0));
            Ok(c.exit(status::INVLPG))
        }
        M::Wbinvd | M::Invd | M::Clflush | M::Clflushopt => {
            if matches!(m, M::Wbinvd | M::Invd) && c.need_cpl0() {
                return Ok(Flow::End);
            }
            Ok(Flow::Next)
        }
        M::Clts => {
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            let v = c.ld(state::CR0_OFF);
            let n = c.op2i(Block::and, v, !state::ctl::CR0_TS);
            c.st(n, state::CR0_OFF);
            // CR0.TS is a TB flag (SSE raises #NM): continue in a new block.
            Ok(c.exit(status::NEXT))
        }
        M::Swapgs => {
            if !c.code64() {
                return Err(Unsupported);
            }
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            let kgs_off = offset_of!(X86State, kernel_gs_base) as u32;
            let gs_off = state::seg_base_off(state::seg::GS);
            let gs = c.ld(gs_off);
            let kgs = c.ld(kgs_off);
            c.st(kgs, gs_off);
            c.st(gs, kgs_off);
            Ok(Flow::Next)
        }
        M::Syscall => Ok(c.exit(status::SYSCALL)),
        M::Sysret | M::Sysretq => {
            if c.need_cpl0() {
                return Ok(Flow::End);
            }
            let q = (m == M::Sysretq) as u64;
            Ok(c.exit(status::SYSRET | q << 16))
        }
        M::Iret | M::Iretd | M::Iretq => {
            let size: u64 = match m {
                M::Iretq => 8,
                M::Iretd => 4,
                _ => 2,
            };
            Ok(c.exit(status::IRET | size << 24))
        }
        M::Retf => {
            let name = format!("{:?}", c.i.code());
            let size: u64 = if name.starts_with("Retfq") {
                8
            } else if name.starts_with("Retfd") {
                4
            } else {
                2
            };
            let imm = if c.i.op_count() == 1 {
                c.i.immediate(0) & 0xffff
            } else {
                0
            };
            Ok(c.exit(status::FAR_RET | size << 24 | imm << 32))
        }
        M::Lds | M::Les | M::Lss | M::Lfs | M::Lgs => load_far_pointer(c, m),
        M::Xlatb => {
            // rbx, ebx or bx by the address size.
            let bytes = match super::gpr_num(c.i.memory_base()).1 {
                0 => {
                    if c.code64() {
                        8
                    } else {
                        4
                    }
                }
                n => n,
            };
            let rbx = c.read_reg(3, bytes, false);
            let al = c.read_reg(0, 1, false);
            let off = c.op2(Block::add, rbx, al);
            let off = c.zext(off, bytes);
            let a = c.add_seg_base(off, c.i.memory_segment(), bytes == 4);
            let v = c.qld(a, 1, false);
            c.write_reg(0, 1, false, v);
            Ok(Flow::Next)
        }
        _ => Err(Unsupported),
    }
}

/// lds, les, lss, lfs, lgs: the offset and the selector are read here; the
/// segment load (which may fault) and then the register write are finished
/// in Rust, so a faulting load leaves the register as it was.
fn load_far_pointer(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    use state::seg;
    if c.i.op_kind(1) != OpKind::Memory {
        return Err(Unsupported);
    }
    let Some(d) = reg_of(c, 0) else {
        return Err(Unsupported);
    };
    let bytes = c.op_size(0);
    let a = c.ea();
    let off = c.qld(a, bytes, false);
    let a2 = c.op2i(Block::add, a, bytes as u64);
    let sel = c.qld(a2, 2, false);
    c.st(sel, state::scratch_off(0));
    c.st(off, state::scratch_off(1));
    let s = match m {
        Mnemonic::Lds => seg::DS,
        Mnemonic::Les => seg::ES,
        Mnemonic::Lss => seg::SS,
        Mnemonic::Lfs => seg::FS,
        _ => seg::GS,
    } as u64;
    Ok(c.exit(status::LOAD_SEG | s << 16 | 1 << 21 | (bytes as u64) << 24 | (d as u64) << 32))
}

/// mov to a segment, control or debug register.
pub fn mov_to_special(c: &mut Ctx<'_>) -> Res {
    let r = c.i.op_register(0);
    if r.is_segment_register() {
        let s = seg_index(r);
        if s == state::seg::CS {
            return Err(Unsupported);
        }
        let v = c.read_op(1, 2)?;
        c.st(v, state::scratch_off(0));
        return Ok(c.exit(status::LOAD_SEG | (s as u64) << 16));
    }
    if c.need_cpl0() {
        return Ok(Flow::End);
    }
    let bytes = if c.code64() { 8 } else { 4 };
    let v = c.read_op(1, bytes)?;
    if r.is_dr() {
        // DR6 keeps what the guest writes (handlers clear BS); the others are
        // accepted and ignored (no breakpoints).
        if r == iced_x86::Register::DR6 {
            c.st(v, state::DR6_OFF);
        }
        return Ok(Flow::Next);
    }
    let n = r as u64 - iced_x86::Register::CR0 as u64;
    c.st(v, state::scratch_off(0));
    Ok(c.exit(status::MOV_TO_CR | n << 16))
}

/// mov from a segment, control or debug register.
pub fn mov_from_special(c: &mut Ctx<'_>) -> Res {
    let r = c.i.op_register(1);
    if r.is_segment_register() {
        let v = c.ld(state::seg_selector_off(seg_index(r)));
        let bytes = if c.i.op_kind(0) == OpKind::Memory {
            2
        } else {
            c.op_size(0)
        };
        let l = c.loc(0)?;
        c.store(l, bytes, v);
        return Ok(Flow::Next);
    }
    if c.need_cpl0() {
        return Ok(Flow::End);
    }
    let Some(d) = reg_of(c, 0) else {
        return Err(Unsupported);
    };
    let bytes = if c.code64() { 8 } else { 4 };
    let v = if r.is_dr() {
        // DR6 as kept; DR7 as its reset value, the others as 0.
        match r as u64 - iced_x86::Register::DR0 as u64 {
            6 => c.ld(state::DR6_OFF),
            7 => c.k(0x400),
            _ => c.k(0),
        }
    } else {
        let off = match r as u64 - iced_x86::Register::CR0 as u64 {
            0 => state::CR0_OFF,
            2 => state::CR2_OFF,
            3 => state::CR3_OFF,
            4 => state::CR4_OFF,
            8 => state::CR8_OFF,
            _ => return Err(Unsupported),
        };
        c.ld(off)
    };
    c.write_reg(d, bytes, false, v);
    Ok(Flow::Next)
}

/// Far jmp or call: selector and offset to scratch, finished in Rust.
pub fn far_jmp(c: &mut Ctx<'_>, call: bool) -> Res {
    let (sel, off, size) = match c.i.op_kind(0) {
        OpKind::FarBranch32 | OpKind::FarBranch16 => {
            let size = if c.i.op_kind(0) == OpKind::FarBranch32 {
                4
            } else {
                2
            };
            let s = c.k(c.i.far_branch_selector() as u64);
            let o = c.k(if size == 4 {
                c.i.far_branch32() as u64
            } else {
                c.i.far_branch16() as u64
            });
            (s, o, size)
        }
        OpKind::Memory => {
            let name = format!("{:?}", c.i.code());
            let size = if name.contains("m1664") {
                8
            } else if name.contains("m1632") {
                4
            } else {
                2
            };
            let a = c.ea();
            let o = c.qld(a, size, false);
            let a2 = c.op2i(Block::add, a, size as u64);
            let s = c.qld(a2, 2, false);
            (s, o, size)
        }
        _ => return Err(Unsupported),
    };
    c.st(sel, state::scratch_off(0));
    c.st(off, state::scratch_off(1));
    Ok(c.exit(status::FAR_JMP | (call as u64) << 16 | (size as u64) << 24))
}

/// The fixed CPU model `cpuid` describes.
///
/// Vendor "moatmoatmoat", family 6 model 0x5e stepping 3. Features: the
/// integer ISA moat translates: TSC, MSR, PAE, PGE, CMOV, PAT, PSE, CX8,
/// CX16, syscall, NX, long mode, 1 GiB pages, rdtscp, lahf in 64-bit mode,
/// lzcnt, popcnt, the local APIC (xAPIC; its ID is `cpu_index`), and the
/// x87 FPU, MMX, FXSR, SSE and SSE2 on x86-64 hosts (whose x87 and SSE units run
/// the guest's floating point), SSE3 and SSSE3 where the host has them. No
/// MONITOR/MWAIT (they raise #UD), SSE4 or AVX, no x2APIC or TSC-deadline timer. (`tzcnt`
/// runs as tzcnt, as on a BMI1 CPU, though BMI1 is not advertised: its other
/// instructions are not implemented.)
///
/// Time: the TSC runs at [`TSC_HZ`], invariant, as leaves 0x15 (crystal
/// ratio 1/1 at 1 GHz) and 0x16 (1000 MHz base) report, so a guest needs
/// no calibration against the PIT.
pub fn cpuid(leaf: u32, sub: u32, cpu_index: u64) -> [u32; 4] {
    let _ = sub;
    let s = |b: &[u8; 4]| u32::from_le_bytes(*b);
    let text = b"moat TCG x86-64 CPU";
    let brand: [u8; 48] = std::array::from_fn(|i| text.get(i).copied().unwrap_or(0));
    match leaf {
        0 => [0x16, s(b"moat"), s(b"moat"), s(b"moat")],
        1 => {
            let edx = (1 << 3)
                | (1 << 4)
                | (1 << 5)
                | (1 << 6)
                | (1 << 8)
                | (1 << 9)
                | (1 << 13)
                | (1 << 15)
                | (1 << 16);
            // MMX, FXSR, SSE, SSE2 (bits 23-26) where the host can run them.
            let edx = if crate::simd::available() && crate::x87::available() {
                edx | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26)
            } else {
                edx
            };
            // The x87 FPU (bit 0), likewise.
            let edx = if crate::x87::available() {
                edx | 1
            } else {
                edx
            };
            let ecx = (1 << 13) | (1 << 23);
            // SSE3 (bit 0) and SSSE3 (bit 9) where the host has them.
            let ecx =
                ecx | if crate::simd::available() && crate::mmx::sse3() {
                    1
                } else {
                    0
                } | if crate::simd::available() && crate::mmx::ssse3() {
                    1 << 9
                } else {
                    0
                };
            // Initial APIC ID, logical processor count 1, clflush 64 bytes.
            let ebx = ((cpu_index as u32 & 0xff) << 24) | 0x0001_0800;
            [0x0005_06e3, ebx, ecx, edx]
        }
        0x15 => [1, 1, TSC_HZ as u32, 0],
        0x16 => [
            (TSC_HZ / 1_000_000) as u32,
            (TSC_HZ / 1_000_000) as u32,
            100,
            0,
        ],
        0x8000_0000 => [0x8000_0008, 0, 0, 0],
        // Invariant TSC.
        0x8000_0007 => [0, 0, 0, 1 << 8],
        0x8000_0001 => [
            0,
            0,
            1 | (1 << 5),
            (1 << 11) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29),
        ],
        0x8000_0002..=0x8000_0004 => {
            let base = (leaf - 0x8000_0002) as usize * 16;
            let w = |k: usize| {
                let i = base + k * 4;
                u32::from_le_bytes([brand[i], brand[i + 1], brand[i + 2], brand[i + 3]])
            };
            [w(0), w(1), w(2), w(3)]
        }
        0x8000_0008 => [40 | (48 << 8), 0, 0, 0],
        _ => [0; 4],
    }
}

/// cpuid: leaf in eax, subleaf in ecx, results in eax/ebx/ecx/edx.
pub extern "C" fn helper_cpuid(env: *mut u8) -> u64 {
    // SAFETY: translated code passes its CPU-state pointer, an X86State not
    // otherwise borrowed while the helper runs.
    let s = unsafe { &mut *(env as *mut X86State) };
    let r = cpuid(s.regs[0] as u32, s.regs[1] as u32, s.cpu_index);
    for (reg, v) in [0usize, 3, 1, 2].into_iter().zip(r) {
        s.regs[reg] = v as u64;
    }
    0
}

/// The guest TSC's frequency: one tick per nanosecond of the VM clock.
pub const TSC_HZ: u64 = 1_000_000_000;

/// The time stamp counter: the VM clock's nanoseconds (host monotonic time
/// since the machine started) plus the guest's offset. A CPU with no VM
/// clock (unit tests) counts from its first use.
pub fn tsc(clock: Option<&devices::Clock>, offset: u64) -> u64 {
    let ns = match clock {
        Some(clock) => clock.now_ns(),
        None => {
            static START: OnceLock<Instant> = OnceLock::new();
            START.get_or_init(Instant::now).elapsed().as_nanos() as u64
        }
    };
    ns.wrapping_add(offset)
}

/// rdtsc: edx:eax = TSC.
pub extern "C" fn helper_rdtsc(env: *mut u8) -> u64 {
    // SAFETY: as in `helper_cpuid`.
    let s = unsafe { &mut *(env as *mut X86State) };
    let t = tsc(s.clock.as_deref(), s.tsc_offset);
    s.regs[0] = t & 0xffff_ffff;
    s.regs[2] = t >> 32;
    0
}
