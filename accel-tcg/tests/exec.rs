//! The exec loop with a toy front end: a small guest ISA translated to IR,
//! run through the cache, chaining and invalidation, on the JIT and on the
//! interpreter.

mod common;

use accel_tcg::ExitReason;
use accel_tcg::exec::{Engine, Exec, GuestArch, TbKey};
use accel_tcg::interp::Interpreter;
use accel_tcg::ir::{Block, Cond, MemOp, MemSize, Ty};
use accel_tcg::softmmu::{MemFault, MemoryHandler, PAGE_MASK, PAGE_SIZE};
use common::{RAM_BASE, RAM_PAGES, TestEnv, TestMem, reg};

/// Toy ISA, 8 bytes per instruction: opcode, rd, rs, rt, imm32 (signed).
mod toy {
    pub const HALT: u8 = 0;
    pub const ADDI: u8 = 1;
    pub const ADD: u8 = 2;
    pub const LD: u8 = 3;
    pub const ST: u8 = 4;
    pub const BNE: u8 = 5;
    pub const JR: u8 = 6;
    pub const MUL: u8 = 7;
    /// rd = rs - rt, and flags ZF (reg 17) and CF (reg 18) like x86 `sub`.
    pub const SUBF: u8 = 8;

    pub fn enc(op: u8, rd: u8, rs: u8, rt: u8, imm: i32) -> [u8; 8] {
        let i = imm.to_le_bytes();
        [op, rd, rs, rt, i[0], i[1], i[2], i[3]]
    }
}

const PC: usize = 16;
const ZF: usize = 17;
const CF: usize = 18;
const MAX_INSNS: u64 = 32;

struct Toy;

impl GuestArch for Toy {
    type State = TestEnv;

    fn tb_key(
        &mut self,
        s: &mut TestEnv,
        _mem: &mut dyn MemoryHandler,
    ) -> Result<TbKey, ExitReason> {
        let pc = s.regs[PC];
        if !(RAM_BASE..RAM_BASE + RAM_PAGES * PAGE_SIZE).contains(&pc) {
            return Err(ExitReason::Fault {
                pc,
                vaddr: pc,
                fault: MemFault { code: 99 },
            });
        }
        Ok(TbKey {
            pc,
            phys: pc,
            flags: 0,
        })
    }

    fn set_pc(&mut self, s: &mut TestEnv, pc: u64) {
        s.regs[PC] = pc;
    }

    fn translate(
        &mut self,
        s: &mut TestEnv,
        mem: &mut dyn MemoryHandler,
        key: TbKey,
        b: &mut Block,
    ) -> Result<(), ExitReason> {
        let mut pc = key.pc;
        let fetch = |mem: &mut dyn MemoryHandler, s: &mut TestEnv, pc: u64| {
            mem.load(&mut s.hdr.tlb, pc, MemSize::B8)
                .map(|v| v.to_le_bytes())
        };
        for n in 0..MAX_INSNS {
            let Ok(i) = fetch(mem, s, pc) else {
                if n == 0 {
                    return Err(ExitReason::Fault {
                        pc,
                        vaddr: pc,
                        fault: MemFault { code: 99 },
                    });
                }
                break;
            };
            let (op, rd, rs, rt) = (
                i[0],
                reg(i[1] as usize % 16),
                reg(i[2] as usize % 16),
                reg(i[3] as usize % 16),
            );
            let imm = i32::from_le_bytes([i[4], i[5], i[6], i[7]]) as i64 as u64;
            b.insn_start(pc);
            let next = pc + 8;
            let x = b.temp64();
            let y = b.temp64();
            match op {
                toy::ADDI | toy::LD | toy::ST => {
                    let k = b.const_temp(Ty::I64, imm);
                    b.ld_env(x, rs, MemOp::Q);
                    b.add(x, x, k);
                    match op {
                        toy::ADDI => b.st_env(x, rd, MemOp::Q),
                        toy::LD => {
                            b.qemu_ld(y, x, MemOp::Q);
                            b.st_env(y, rd, MemOp::Q);
                        }
                        _ => {
                            b.ld_env(y, rt, MemOp::Q);
                            b.qemu_st(y, x, MemOp::Q);
                        }
                    }
                }
                toy::ADD | toy::MUL | toy::SUBF => {
                    b.ld_env(x, rs, MemOp::Q);
                    b.ld_env(y, rt, MemOp::Q);
                    let d = b.temp64();
                    match op {
                        toy::ADD => b.add(d, x, y),
                        toy::MUL => b.mul(d, x, y),
                        _ => {
                            b.sub(d, x, y);
                            let zero = b.const_temp(Ty::I64, 0);
                            let zf = b.temp64();
                            let cf = b.temp64();
                            b.setcond(zf, d, zero, Cond::Eq);
                            b.setcond(cf, x, y, Cond::Ltu);
                            b.st_env(zf, reg(ZF), MemOp::Q);
                            b.st_env(cf, reg(CF), MemOp::Q);
                        }
                    }
                    b.st_env(d, rd, MemOp::Q);
                }
                toy::BNE => {
                    b.ld_env(x, rs, MemOp::Q);
                    b.ld_env(y, rt, MemOp::Q);
                    let taken = b.label();
                    b.brcond(x, y, Cond::Ne, taken);
                    b.goto_tb(0, next);
                    b.set_label(taken);
                    b.goto_tb(1, pc.wrapping_add(imm));
                    return Ok(());
                }
                toy::JR => {
                    b.ld_env(x, rs, MemOp::Q);
                    b.exit_indirect(x);
                    return Ok(());
                }
                _ => {
                    // HALT and unknown opcodes stop with the pc of the insn.
                    b.exit_status(op as u64);
                    return Ok(());
                }
            }
            pc = next;
            if pc & PAGE_MASK != key.pc & PAGE_MASK {
                break;
            }
        }
        b.goto_tb(0, pc);
        Ok(())
    }
}

/// sum = Σ r2 for r2 = n..1, storing each partial sum to [r3], r3 += 8;
/// then jumps through JR to the final block, which multiplies and halts.
fn program(n: i32) -> Vec<u8> {
    use toy::*;
    let code: Vec<[u8; 8]> = vec![
        enc(ADDI, 1, 0, 0, 0),                      // 0x00: r1 = r0 + 0 (r0 holds 0)
        enc(ADDI, 2, 0, 0, n),                      // 0x08: r2 = n
        enc(ADDI, 3, 0, 0, 0x1_1000),               // 0x10: r3 = RAM page 1
        enc(ADD, 1, 1, 2, 0),                       // 0x18: loop: r1 += r2
        enc(ST, 0, 3, 1, 0),                        // 0x20: [r3] = r1
        enc(ADDI, 3, 3, 0, 8),                      // 0x28: r3 += 8
        enc(SUBF, 4, 2, 5, 0),                      // 0x30: r4 = r2 - r5 (r5 = 1), flags
        enc(ADDI, 2, 2, 0, -1),                     // 0x38: r2 -= 1
        enc(BNE, 0, 2, 0, 0x18 - 0x40),             // 0x40: if r2 != r0 goto loop
        enc(ADDI, 6, 0, 0, RAM_BASE as i32 + 0x60), // 0x48
        enc(JR, 0, 6, 0, 0),                        // 0x50: goto 0x60
        enc(HALT, 0, 0, 0, 0),                      // 0x58: never reached
        enc(MUL, 7, 1, 1, 0),                       // 0x60: r7 = r1 * r1
        enc(LD, 8, 3, 0, -8),                       // 0x68: r8 = [r3 - 8]
        enc(HALT, 0, 0, 0, 0),                      // 0x70
    ];
    code.concat()
}

fn setup(n: i32) -> (Box<TestEnv>, TestMem) {
    let mut env = TestEnv::new(1);
    env.regs = [0; common::NREGS];
    env.regs[5] = 1;
    env.regs[PC] = RAM_BASE;
    let mut mem = TestMem::new(1);
    let p = program(n);
    mem.ram[..p.len()].copy_from_slice(&p);
    mem.prefill(&mut env.hdr.tlb);
    (env, mem)
}

fn run(exec: &mut Exec<Toy>, env: &mut TestEnv, mem: &mut TestMem) -> ExitReason {
    exec.run(env, mem).expect("exec")
}

#[test]
fn runs_a_loop_with_chaining_and_matches_the_interpreter() {
    let n = 1000;
    let (mut env, mut mem) = setup(n);
    let mut exec = Exec::with_jit(Toy, 1 << 20).expect("exec");
    let exit = run(&mut exec, &mut env, &mut mem);
    assert_eq!(
        exit,
        ExitReason::Status {
            code: 0,
            pc: RAM_BASE + 0x70
        }
    );
    let sum = (n as u64) * (n as u64 + 1) / 2;
    assert_eq!(env.regs[1], sum);
    assert_eq!(env.regs[7], sum * sum);
    assert_eq!(env.regs[8], sum);
    assert_eq!((env.regs[ZF], env.regs[CF]), (1, 0));
    let st = exec.stats();
    assert!(st.translations <= 6, "{st:?}");
    // The loop block chains to itself: the exec loop sees only a handful of
    // dispatches for 1000 iterations.
    assert!(st.chains >= 2 && st.dispatches < 20, "{st:?}");

    let (mut ienv, mut imem) = setup(n);
    let mut interp = Exec::new(Toy, Engine::Interp(Interpreter::new()));
    assert_eq!(run(&mut interp, &mut ienv, &mut imem), exit);
    assert_eq!(ienv.regs, env.regs);
    assert_eq!(imem.ram, mem.ram);

    let (mut uenv, mut umem) = setup(n);
    let mut unopt = Exec::with_jit(Toy, 1 << 20).expect("exec");
    unopt.set_optimize(false);
    assert_eq!(run(&mut unopt, &mut uenv, &mut umem), exit);
    assert_eq!(uenv.regs, env.regs);
}

#[test]
fn invalidating_a_page_retranslates_modified_code() {
    let (mut env, mut mem) = setup(10);
    let mut exec = Exec::with_jit(Toy, 1 << 20).expect("exec");
    run(&mut exec, &mut env, &mut mem);
    assert_eq!(env.regs[1], 55);
    assert!(exec.has_code(RAM_BASE));
    // Self-modifying code: the loop now adds r5 (1) instead of r2.
    mem.ram[0x18..0x20].copy_from_slice(&toy::enc(toy::ADD, 1, 1, 5, 0));
    exec.invalidate_page(RAM_BASE);
    assert!(!exec.has_code(RAM_BASE));
    let (mut env2, _) = setup(10);
    mem.prefill(&mut env2.hdr.tlb);
    run(&mut exec, &mut env2, &mut mem);
    assert_eq!(env2.regs[1], 10);
}

#[test]
fn tiny_cache_flushes_and_keeps_running() {
    // One page of code cache; invalidation does not reclaim space, so
    // retranslating again and again fills it and forces flushes.
    let mut exec = Exec::with_jit(Toy, 4096).expect("exec");
    for round in 0..30 {
        let (mut env, mut mem) = setup(300);
        run(&mut exec, &mut env, &mut mem);
        assert_eq!(env.regs[1], 300 * 301 / 2, "round {round}");
        exec.invalidate_page(RAM_BASE);
    }
    assert!(exec.stats().flushes > 0, "{:?}", exec.stats());
}

/// A loop whose back edge is a computed jump: the indirect-jump cache keeps
/// it inside generated code.
#[test]
fn computed_jumps_stay_in_generated_code() {
    use toy::*;
    let n = 500;
    let code: Vec<[u8; 8]> = vec![
        enc(ADDI, 2, 0, 0, n),                      // 0x00
        enc(ADDI, 6, 0, 0, RAM_BASE as i32 + 0x10), // 0x08: r6 = loop
        enc(ADD, 1, 1, 2, 0),                       // 0x10: loop: r1 += r2
        enc(ADDI, 2, 2, 0, -1),                     // 0x18
        enc(BNE, 0, 2, 0, 0x10),                    // 0x20: r2 != 0 -> 0x30
        enc(HALT, 0, 0, 0, 0),                      // 0x28
        enc(JR, 0, 6, 0, 0),                        // 0x30: goto r6
    ];
    let p = code.concat();
    let mut results = Vec::new();
    for use_jit in [true, false] {
        let (mut env, mut mem) = setup(1);
        mem.ram[..p.len()].copy_from_slice(&p);
        let mut exec = if use_jit {
            Exec::with_jit(Toy, 1 << 20).expect("exec")
        } else {
            Exec::new(Toy, Engine::Interp(Interpreter::new()))
        };
        let exit = run(&mut exec, &mut env, &mut mem);
        assert_eq!(
            exit,
            ExitReason::Status {
                code: 0,
                pc: RAM_BASE + 0x28
            }
        );
        assert_eq!(env.regs[1], (n as u64) * (n as u64 + 1) / 2);
        if use_jit {
            assert!(exec.stats().dispatches < 10, "{:?}", exec.stats());
            // Invalidation empties the jump cache: the code is translated
            // again and gives the same result.
            exec.invalidate_page(RAM_BASE);
            let (mut env2, _) = setup(1);
            mem.prefill(&mut env2.hdr.tlb);
            assert_eq!(run(&mut exec, &mut env2, &mut mem), exit);
            assert_eq!(env2.regs[1], env.regs[1]);
            assert!(exec.stats().translations >= 6, "{:?}", exec.stats());
        }
        results.push(env.regs);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn exit_request_and_fetch_faults_come_back_to_the_caller() {
    let (mut env, mut mem) = setup(5);
    let mut exec = Exec::with_jit(Toy, 1 << 20).expect("exec");
    env.hdr.request_exit();
    assert_eq!(
        run(&mut exec, &mut env, &mut mem),
        ExitReason::Interrupted { pc: RAM_BASE }
    );
    env.hdr.clear_exit_request();
    env.regs[PC] = 0x9999_0000;
    assert_eq!(
        run(&mut exec, &mut env, &mut mem),
        ExitReason::Fault {
            pc: 0x9999_0000,
            vaddr: 0x9999_0000,
            fault: MemFault { code: 99 }
        }
    );
}

/// The memory handler side of the self-modifying-code protocol.
struct SmcMem {
    inner: TestMem,
    code: accel_tcg::exec::CodePages,
    stop: accel_tcg::softmmu::ExitRequest,
}

impl MemoryHandler for SmcMem {
    fn load(
        &mut self,
        tlb: &mut accel_tcg::softmmu::Tlb,
        vaddr: u64,
        size: MemSize,
    ) -> Result<u64, MemFault> {
        self.inner.load(tlb, vaddr, size)
    }
    fn store(
        &mut self,
        tlb: &mut accel_tcg::softmmu::Tlb,
        vaddr: u64,
        size: MemSize,
        value: u64,
    ) -> Result<(), MemFault> {
        self.inner.store(tlb, vaddr, size, value)?;
        // Guest physical == virtual here.
        if self.code.contains(vaddr) {
            self.code.note_write(vaddr);
            self.stop.request();
        }
        Ok(())
    }
}

#[test]
fn self_modifying_code_is_retranslated() {
    use toy::*;
    let code: Vec<[u8; 8]> = vec![
        enc(ADDI, 1, 0, 0, 0),    // 0x00: r1 = 0
        enc(ADDI, 2, 0, 0, 2),    // 0x08: r2 = 2
        enc(ADDI, 1, 1, 0, 1),    // 0x10: loop: r1 += 1 (patched to += 100)
        enc(ST, 0, 3, 4, 0),      // 0x18: [r3] = r4 (r3 = 0x10, r4 = new insn)
        enc(ADDI, 2, 2, 0, -1),   // 0x20
        enc(BNE, 0, 2, 0, -0x18), // 0x28: r2 != 0 -> loop
        enc(HALT, 0, 0, 0, 0),    // 0x30
    ];
    let p = code.concat();
    let mut results = Vec::new();
    for use_jit in [true, false] {
        let (mut env, mut inner) = setup(1);
        inner.ram[..p.len()].copy_from_slice(&p);
        env.regs[3] = RAM_BASE + 0x10;
        env.regs[4] = u64::from_le_bytes(enc(ADDI, 1, 1, 0, 100));
        let mut exec = if use_jit {
            Exec::with_jit(Toy, 1 << 20).expect("exec")
        } else {
            Exec::new(Toy, Engine::Interp(Interpreter::new()))
        };
        let mut mem = SmcMem {
            inner,
            code: exec.code_pages(),
            stop: env.hdr.exit_request(),
        };
        let mut interrupts = 0;
        let exit = loop {
            match exec.run(&mut env, &mut mem).expect("exec") {
                ExitReason::Interrupted { .. } => {
                    interrupts += 1;
                    env.hdr.clear_exit_request();
                    assert!(interrupts < 10);
                }
                other => break other,
            }
        };
        assert_eq!(
            exit,
            ExitReason::Status {
                code: 0,
                pc: RAM_BASE + 0x30
            }
        );
        assert_eq!(
            env.regs[1], 101,
            "the second iteration ran the patched instruction"
        );
        assert!(interrupts >= 1);
        results.push(env.regs);
    }
    assert_eq!(results[0], results[1]);
}
