//! Exceptions through the IDT in long mode, paging faults, and precise
//! fault state, on the front end run by moat's exec loop (the interpreter
//! unless a test says otherwise).
//!
//! Each test builds a small long-mode machine: identity-mapped 4 KiB pages
//! for the first 2 MiB (one page left unmapped to fault on), a flat GDT, an
//! IDT whose handlers mostly just `hlt` so the test can inspect the frame
//! the CPU pushed.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::Arc;

mod common;

use std::time::Duration;

use accel_tcg::guest::GuestCpu;
use common::{Engine, TestVm};
use devices::Bus;
use frontend_x86::X86Cpu;
use machine::{VcpuExit, X86CpuState};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const CODE: u64 = 0x10_0000;
const STACK_TOP: u64 = 0x9_0000;
const UNMAPPED: u64 = 0x1f_f000;
const IDT: u64 = 0x8000;
const GDT: u64 = 0x500;
const HANDLERS: u64 = 0x2_0000;

struct Machine {
    mem: GuestMemoryMmap,
    vm: TestVm,
}

fn gate(offset: u64) -> [u64; 2] {
    let lo = (offset & 0xffff)
        | (0x08 << 16)
        | (0xeu64 << 40)
        | (1 << 47)
        | ((offset >> 16) & 0xffff) << 48;
    [lo, offset >> 32]
}

impl Machine {
    /// A machine running `code` at CODE; every vector's handler is `hlt`
    /// unless `handlers` gives code for it.
    fn new(code: &[u8], handlers: &[(u8, &[u8])], absent: &[u8]) -> Machine {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
        // PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000 (first 2 MiB, 4K pages)
        mem.write_obj(0x2003u64, GuestAddress(0x1000)).unwrap();
        mem.write_obj(0x3003u64, GuestAddress(0x2000)).unwrap();
        mem.write_obj(0x4003u64, GuestAddress(0x3000)).unwrap();
        for i in 0..512u64 {
            let pa = i << 12;
            let v = if pa == UNMAPPED { 0 } else { pa | 3 };
            mem.write_obj(v, GuestAddress(0x4000 + i * 8)).unwrap();
        }
        // PD[1]: 2 MiB page at 2 MiB
        mem.write_obj(0x20_0083u64, GuestAddress(0x3008)).unwrap();
        for (i, d) in [0u64, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff]
            .iter()
            .enumerate()
        {
            mem.write_obj(*d, GuestAddress(GDT + i as u64 * 8)).unwrap();
        }
        for v in 0..256u64 {
            let h = HANDLERS + v * 0x40;
            let body: &[u8] = handlers
                .iter()
                .find(|(n, _)| *n as u64 == v)
                .map_or(&[0xf4], |(_, b)| b);
            mem.write_slice(body, GuestAddress(h)).unwrap();
            let mut g = gate(h);
            if absent.contains(&(v as u8)) {
                g[0] &= !(1 << 47);
            }
            mem.write_obj(g[0], GuestAddress(IDT + v * 16)).unwrap();
            mem.write_obj(g[1], GuestAddress(IDT + v * 16 + 8)).unwrap();
        }
        mem.write_slice(code, GuestAddress(CODE)).unwrap();
        let mut st = machine::boards::pc::boot::long_mode_entry(CODE);
        st.cr3 = 0x1000;
        st.cr0 |= 1 << 16; // WP
        st.gdt.base = GDT;
        st.gdt.limit = 23;
        st.idt.base = IDT;
        st.idt.limit = 0xfff;
        st.gprs[4] = STACK_TOP;
        st.cs.selector = 8;
        for s in [&mut st.ds, &mut st.es, &mut st.ss, &mut st.fs, &mut st.gs] {
            s.selector = 0x10;
        }
        let mut cpu = X86Cpu::new();
        cpu.set_cpu_state(&machine::CpuState::X86_64(Box::new(st)))
            .unwrap();
        Machine {
            vm: TestVm::new(cpu, mem.clone()),
            mem,
        }
    }

    fn run(&mut self) -> Option<VcpuExit> {
        self.vm.run(10_000)
    }

    /// Runs with `pio` as the port bus (on a machine that has not run yet).
    fn run_with_pio(&mut self, pio: Bus) -> Option<VcpuExit> {
        self.vm.pio = Arc::new(pio);
        self.run()
    }

    fn state(&mut self) -> X86CpuState {
        self.vm.state()
    }

    fn stack(&mut self, n: usize) -> Vec<u64> {
        let sp = self.state().gprs[4];
        (0..n)
            .map(|i| {
                self.mem
                    .read_obj::<u64>(GuestAddress(sp + i as u64 * 8))
                    .unwrap()
            })
            .collect()
    }

    fn halted_in_handler(&mut self, vector: u64) -> X86CpuState {
        let exit = self.run();
        assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
        let s = self.state();
        assert_eq!(
            s.rip,
            HANDLERS + vector * 0x40 + 1,
            "halted in the handler for {vector}"
        );
        s
    }
}

#[test]
fn divide_error_pushes_the_faulting_rip() {
    // xor ecx, ecx; div ecx
    let mut m = Machine::new(&[0x31, 0xc9, 0xf7, 0xf1, 0xf4], &[], &[]);
    let s = m.halted_in_handler(0);
    let f = m.stack(5);
    assert_eq!(f[0], CODE + 2, "rip of div");
    assert_eq!(f[1], 8, "cs");
    assert_eq!(f[3], STACK_TOP, "old rsp");
    assert_eq!(f[4], 0x10, "ss");
    assert_eq!(s.gprs[4], STACK_TOP - 40);
    assert_eq!(s.rflags & (1 << 9), 0, "interrupt gate clears IF");
}

#[test]
fn quotient_overflow_is_a_divide_error() {
    // mov edx, 1; mov ecx, 1; div ecx  (edx:eax / 1 does not fit)
    let code = [0xba, 1, 0, 0, 0, 0xb9, 1, 0, 0, 0, 0xf7, 0xf1, 0xf4];
    let mut m = Machine::new(&code, &[], &[]);
    m.halted_in_handler(0);
    assert_eq!(m.stack(1)[0], CODE + 10);
    assert_eq!(m.state().gprs[2], 1, "rdx unchanged");
}

#[test]
fn page_fault_has_error_code_and_cr2() {
    // mov rax, [UNMAPPED + 8]
    let code = [0x48, 0x8b, 0x04, 0x25, 0x08, 0xf0, 0x1f, 0x00, 0xf4];
    let mut m = Machine::new(&code, &[], &[]);
    let s = m.halted_in_handler(14);
    let f = m.stack(2);
    assert_eq!(f[0], 0, "not present, read, supervisor");
    assert_eq!(f[1], CODE);
    assert_eq!(s.cr2, UNMAPPED + 8);
}

#[test]
fn write_to_a_read_only_page_with_wp() {
    // Make the page holding 0x5000 read-only, then write to it.
    // mov byte [0x5000], 1
    let code = [0xc6, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, 0x01, 0xf4];
    let mut m = Machine::new(&code, &[], &[]);
    m.mem
        .write_obj(0x5001u64, GuestAddress(0x4000 + 5 * 8))
        .unwrap();
    let s = m.halted_in_handler(14);
    assert_eq!(m.stack(1)[0], 3, "present | write");
    assert_eq!(s.cr2, 0x5000);
}

#[test]
fn accessed_and_dirty_bits_are_set() {
    // mov byte [0x6000], 1; mov al, [0x7000]
    let code = [
        0xc6, 0x04, 0x25, 0x00, 0x60, 0x00, 0x00, 0x01, 0x8a, 0x04, 0x25, 0x00, 0x70, 0x00, 0x00,
        0xf4,
    ];
    let mut m = Machine::new(&code, &[], &[]);
    assert!(matches!(m.run(), Some(VcpuExit::Halted { .. })));
    let pte6: u64 = m.mem.read_obj(GuestAddress(0x4000 + 6 * 8)).unwrap();
    let pte7: u64 = m.mem.read_obj(GuestAddress(0x4000 + 7 * 8)).unwrap();
    assert_eq!(pte6 & 0x60, 0x60, "accessed and dirty");
    assert_eq!(pte7 & 0x60, 0x20, "accessed only");
}

#[test]
fn invalid_opcode_and_breakpoint_resume() {
    // int3; mov r13, 1; ud2
    let code = [0xcc, 0x49, 0xc7, 0xc5, 0x01, 0, 0, 0, 0x0f, 0x0b];
    // #BP handler: mov r14, 0x33; iretq
    let bp: &[u8] = &[0x49, 0xc7, 0xc6, 0x33, 0, 0, 0, 0x48, 0xcf];
    let mut m = Machine::new(&code, &[(3, bp)], &[]);
    let s = m.halted_in_handler(6);
    assert_eq!(s.gprs[14], 0x33, "breakpoint handler ran");
    assert_eq!(s.gprs[13], 1, "resumed after int3");
    assert_eq!(m.stack(1)[0], CODE + 8, "#UD reports the ud2");
}

#[test]
fn non_canonical_address_is_a_general_protection_fault() {
    // mov rbx, 0x0000_8000_0000_0000; mov rax, [rbx]
    let code = [
        0x48, 0xbb, 0, 0, 0, 0, 0, 0x80, 0, 0, 0x48, 0x8b, 0x03, 0xf4,
    ];
    let mut m = Machine::new(&code, &[], &[]);
    m.halted_in_handler(13);
    let f = m.stack(2);
    assert_eq!(f[0], 0);
    assert_eq!(f[1], CODE + 10);
}

#[test]
fn fault_in_delivery_becomes_a_double_fault() {
    // #PF's gate is not present: #NP while delivering #PF -> #DF
    let code = [0x48, 0x8b, 0x04, 0x25, 0x00, 0xf0, 0x1f, 0x00, 0xf4];
    let mut m = Machine::new(&code, &[], &[14]);
    m.halted_in_handler(8);
    assert_eq!(m.stack(1)[0], 0, "#DF error code");
}

#[test]
fn fault_while_delivering_a_double_fault_is_a_triple_fault() {
    let code = [0x48, 0x8b, 0x04, 0x25, 0x00, 0xf0, 0x1f, 0x00, 0xf4];
    let mut m = Machine::new(&code, &[], &[14, 8]);
    let exit = m.run();
    assert!(
        matches!(exit, Some(VcpuExit::Crashed(machine::Crash { cause: "triple fault", pc })) if pc == CODE),
        "{exit:?}"
    );
}

#[test]
fn faults_are_precise() {
    // mov rcx, UNMAPPED; add rbx, 1; mov [rcx], rbx
    let code = [
        0x48, 0xc7, 0xc1, 0x00, 0xf0, 0x1f, 0x00, 0x48, 0x83, 0xc3, 0x01, 0x48, 0x89, 0x19, 0xf4,
    ];
    let mut m = Machine::new(&code, &[], &[]);
    let s = m.halted_in_handler(14);
    assert_eq!(s.gprs[3], 1, "the add completed once");
    assert_eq!(m.stack(2), vec![2, CODE + 11], "write fault at the mov");
}

#[test]
fn rep_movs_faults_at_the_element_and_resumes() {
    // rsi = 0x50000, rdi = UNMAPPED - 3, rcx = 8; rep movsb
    let code = [
        0x48, 0xc7, 0xc6, 0x00, 0x00, 0x05, 0x00, // mov rsi, 0x50000
        0x48, 0xc7, 0xc7, 0xfd, 0xef, 0x1f, 0x00, // mov rdi, UNMAPPED - 3
        0x48, 0xc7, 0xc1, 0x08, 0x00, 0x00, 0x00, // mov rcx, 8
        0xf3, 0xa4, 0xf4,
    ];
    let mut m = Machine::new(&code, &[], &[]);
    m.mem
        .write_slice(b"abcdefgh", GuestAddress(0x50000))
        .unwrap();
    let s = m.halted_in_handler(14);
    assert_eq!(s.gprs[1], 5, "three bytes copied");
    assert_eq!(s.gprs[6], 0x50003);
    assert_eq!(s.gprs[7], UNMAPPED);
    assert_eq!(s.cr2, UNMAPPED);
    assert_eq!(
        m.stack(2),
        vec![2, CODE + 21],
        "the fault reports the rep movsb"
    );
    let mut copied = [0u8; 3];
    m.mem
        .read_slice(&mut copied, GuestAddress(UNMAPPED - 3))
        .unwrap();
    assert_eq!(&copied, b"abc");
}

#[test]
fn string_instructions_with_direction_and_repeat_conditions() {
    // std; lea rsi,[0x50007]; lea rdi,[0x60007]; mov ecx,8; rep movsb; cld;
    // mov rsi, 0x50000; mov rdi, 0x60000; mov ecx, 8; repe cmpsb
    let mut code = vec![0xfd];
    code.extend([0x48, 0xc7, 0xc6, 0x07, 0x00, 0x05, 0x00]);
    code.extend([0x48, 0xc7, 0xc7, 0x07, 0x00, 0x06, 0x00]);
    code.extend([0xb9, 0x08, 0, 0, 0, 0xf3, 0xa4, 0xfc]);
    code.extend([0x48, 0xc7, 0xc6, 0x00, 0x00, 0x05, 0x00]);
    code.extend([0x48, 0xc7, 0xc7, 0x00, 0x00, 0x06, 0x00]);
    // make byte 5 differ after the copy: mov byte [0x60005], 0
    code.extend([0xc6, 0x04, 0x25, 0x05, 0x00, 0x06, 0x00, 0x00]);
    code.extend([0xb9, 0x08, 0, 0, 0, 0xf3, 0xa6, 0xf4]);
    let mut m = Machine::new(&code, &[], &[]);
    m.mem
        .write_slice(b"abcdefgh", GuestAddress(0x50000))
        .unwrap();
    let exit = m.run();
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    let s = m.state();
    let mut copy = [0u8; 8];
    m.mem.read_slice(&mut copy, GuestAddress(0x60000)).unwrap();
    assert_eq!(&copy, b"abcde\0gh");
    assert_eq!(s.gprs[1], 2, "stopped after the mismatch at index 5");
    assert_eq!(s.gprs[6], 0x50006);
    assert_eq!(s.rflags & 0x40, 0, "ZF clear");
}

/// How long a random guest may run: the block budget does not bound a loop
/// the JIT chains to itself, nor a halt with interrupts enabled.
const RANDOM_DEADLINE: Duration = Duration::from_secs(1);

/// Random bytes as code, in 64-bit and 32-bit mode: whatever the guest
/// does (faults, wild jumps, writes over its page tables and IDT), the
/// front end neither panics nor produces invalid IR (the interpreter engine
/// verifies every block).
#[test]
fn random_code_never_panics() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for case in 0..300 {
        let code: Vec<u8> = (0..512).map(|_| next() as u8).collect();
        let mut m = Machine::new(&code, &[], &[]);
        if case % 2 == 1 {
            // 32-bit protected mode, paging off.
            let mut st = machine::boards::pc::boot::protected_mode_entry(CODE, 0, 0);
            st.gprs = std::array::from_fn(|_| next() & 0xffff_ffff);
            st.gprs[4] = STACK_TOP;
            m.vm.set_state(st);
        } else {
            let mut st = m.state();
            for r in st.gprs.iter_mut() {
                let v = next();
                if v % 2 == 0 {
                    *r = v >> 1;
                }
            }
            st.gprs[4] = STACK_TOP;
            if case % 4 == 0 {
                // SSE enabled (CR4.OSFXSR, OSXMMEXCPT).
                st.cr4 |= 3 << 9;
            }
            m.vm.set_state(st);
        }
        // A guest may also halt with interrupts enabled, for good.
        m.vm.deadline = RANDOM_DEADLINE;
        let _ = m.vm.run(500);
    }
}

/// Ring 3 and back: ltr, wrmsr (STAR, LSTAR, EFER.SCE), iretq to user
/// mode, syscall/sysretq, then a user access to a supervisor page: #PF with
/// the U bit, delivered on the TSS's RSP0 stack.
#[test]
fn user_mode_syscall_and_page_fault_with_stack_switch() {
    const USER: u64 = 0x10_1000;
    const LSTAR: u64 = 0x2_5000;
    const TSS: u64 = 0x7000;
    const RSP0: u64 = 0x8_0000;
    const USER_STACK: u64 = 0x7_0000;
    let imm32 = |v: u64| (v as u32).to_le_bytes();
    let mut code = vec![0x66, 0xb8, 0x30, 0x00, 0x0f, 0x00, 0xd8]; // mov ax, 0x30; ltr ax
    code.push(0xb9);
    code.extend(imm32(0xc000_0081));
    code.push(0xba);
    code.extend(imm32(0x0018_0008));
    code.extend([0x31, 0xc0, 0x0f, 0x30]); // STAR
    code.push(0xb9);
    code.extend(imm32(0xc000_0082));
    code.push(0xb8);
    code.extend(imm32(LSTAR));
    code.extend([0x31, 0xd2, 0x0f, 0x30]); // LSTAR
    code.push(0xb9);
    code.extend(imm32(0xc000_0080));
    code.extend([0x0f, 0x32, 0x83, 0xc8, 0x01, 0x0f, 0x30]); // EFER.SCE
    for v in [0x23u64, USER_STACK, 0x202, 0x2b, USER] {
        code.push(0x68);
        code.extend(imm32(v));
    }
    code.extend([0x48, 0xcf]); // iretq
    let mut m = Machine::new(&code, &[], &[]);
    let user = [
        0x49, 0xc7, 0xc4, 0x07, 0, 0, 0, // mov r12, 7
        0x0f, 0x05, // syscall
        0x49, 0x89, 0xc5, // mov r13, rax
        0x48, 0x8b, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, // mov rax, [0x5000]
        0xf4,
    ];
    m.mem.write_slice(&user, GuestAddress(USER)).unwrap();
    // syscall handler: mov eax, 0x42; sysretq
    m.mem
        .write_slice(
            &[0xb8, 0x42, 0, 0, 0, 0x48, 0x0f, 0x07],
            GuestAddress(LSTAR),
        )
        .unwrap();
    // user pages everywhere but 0x5000
    for a in [0x1000u64, 0x2000, 0x3000] {
        m.mem.write_obj(a + 0x1000 + 7, GuestAddress(a)).unwrap();
    }
    for i in 0..512u64 {
        let pa = i << 12;
        if pa != UNMAPPED {
            m.mem
                .write_obj(
                    pa | if pa == 0x5000 { 3 } else { 7 },
                    GuestAddress(0x4000 + i * 8),
                )
                .unwrap();
        }
    }
    // GDT: 0x20 user data, 0x28 user code64, 0x30 TSS (16 bytes)
    let gdt: [u64; 8] = [
        0,
        0x00af_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0,
        0x00cf_f300_0000_ffff,
        0x00af_fb00_0000_ffff,
        0x67 | (TSS & 0xff_ffff) << 16 | 0x89 << 40 | (TSS >> 24 & 0xff) << 56,
        TSS >> 32,
    ];
    for (i, d) in gdt.iter().enumerate() {
        m.mem
            .write_obj(*d, GuestAddress(GDT + i as u64 * 8))
            .unwrap();
    }
    m.mem.write_obj(RSP0, GuestAddress(TSS + 4)).unwrap();
    let mut st = m.state();
    st.gdt.limit = 63;
    m.vm.set_state(st);

    let s = m.halted_in_handler(14);
    assert_eq!(s.gprs[12], 7, "user code ran");
    assert_eq!(s.gprs[13], 0x42, "syscall returned");
    assert_eq!(s.gprs[1], USER + 9, "rcx: return address of syscall");
    assert_eq!(s.cs.selector, 0x08);
    assert_eq!(s.gprs[4], RSP0 - 48, "frame on the RSP0 stack");
    let f = m.stack(6);
    assert_eq!(f[0], 5, "#PF error code: present | user");
    assert_eq!(f[1], USER + 12);
    assert_eq!(f[2], 0x2b);
    assert_eq!(f[4], USER_STACK);
    assert_eq!(f[5], 0x23);
    assert_eq!(s.cr2, 0x5000);
    assert_eq!(s.tr.selector, 0x30);
}

/// Switches a machine to 32-bit protected mode (paging off) with 32-bit
/// interrupt gates at 0x9000 pointing at the same handlers, code segment 0x18.
fn protected_mode(m: &mut Machine) {
    m.mem
        .write_obj(0x00cf_9b00_0000_ffffu64, GuestAddress(GDT + 0x18))
        .unwrap();
    for v in 0..256u64 {
        let h = HANDLERS + v * 0x40;
        let gate = (h & 0xffff) | (0x18 << 16) | (0x8e00u64 << 32) | ((h >> 16) & 0xffff) << 48;
        m.mem.write_obj(gate, GuestAddress(0x9000 + v * 8)).unwrap();
    }
    let mut st = machine::boards::pc::boot::protected_mode_entry(CODE, 0, 0);
    st.gdt.base = GDT;
    st.gdt.limit = 31;
    st.idt.base = 0x9000;
    st.idt.limit = 0x7ff;
    st.cs.selector = 0x18;
    st.gprs[4] = STACK_TOP;
    m.vm.set_state(st);
}

fn stack32(m: &mut Machine, n: usize) -> Vec<u32> {
    let sp = m.state().gprs[4];
    (0..n)
        .map(|i| {
            m.mem
                .read_obj::<u32>(GuestAddress(sp + i as u64 * 4))
                .unwrap()
        })
        .collect()
}

#[test]
fn protected_mode_exceptions_use_32_bit_gates() {
    // ud2
    let mut m = Machine::new(&[0x0f, 0x0b], &[], &[]);
    protected_mode(&mut m);
    let s = m.halted_in_handler(6);
    assert_eq!(s.gprs[4], STACK_TOP - 12);
    let f = stack32(&mut m, 3);
    assert_eq!(f[0] as u64, CODE);
    assert_eq!(f[1], 0x18);
    assert_eq!(f[2] & 2, 2, "eflags");

    // mov ax, 0x28; mov ds, ax: selector beyond the GDT limit -> #GP(0x28)
    let mut m = Machine::new(&[0x66, 0xb8, 0x28, 0x00, 0x8e, 0xd8, 0xf4], &[], &[]);
    protected_mode(&mut m);
    m.halted_in_handler(13);
    assert_eq!(stack32(&mut m, 2), vec![0x28, CODE as u32 + 4]);
}

/// Collects port writes and answers reads with a counter.
struct Port {
    written: Vec<u8>,
    next: u8,
}

impl devices::BusDevice for Port {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        for b in data {
            *b = self.next;
            self.next += 1;
        }
    }
    fn write(&mut self, _offset: u64, data: &[u8]) {
        self.written.extend_from_slice(data);
    }
}

#[test]
fn port_io_and_string_port_io() {
    // mov dx, 0x80; mov rsi, 0x50000; mov ecx, 5; rep outsb;
    // mov rdi, 0x60000; mov ecx, 3; rep insw; mov al, 0x7e; out 0x80, al; in al, dx
    let mut code = vec![0x66, 0xba, 0x80, 0x00];
    code.extend([
        0x48, 0xc7, 0xc6, 0x00, 0x00, 0x05, 0x00, 0xb9, 5, 0, 0, 0, 0xf3, 0x6e,
    ]);
    code.extend([
        0x48, 0xc7, 0xc7, 0x00, 0x00, 0x06, 0x00, 0xb9, 3, 0, 0, 0, 0x66, 0xf3, 0x6d,
    ]);
    code.extend([0xb0, 0x7e, 0xe6, 0x80, 0xec, 0xf4]);
    let mut m = Machine::new(&code, &[], &[]);
    m.mem.write_slice(b"hello", GuestAddress(0x50000)).unwrap();
    let port = Arc::new(std::sync::Mutex::new(Port {
        written: Vec::new(),
        next: 1,
    }));
    let mut pio = Bus::new("pio");
    pio.insert(port.clone(), 0x80, 4).unwrap();
    let exit = m.run_with_pio(pio);
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    let s = m.state();
    assert_eq!(port.lock().unwrap().written, b"hello~");
    let mut words = [0u8; 6];
    m.mem.read_slice(&mut words, GuestAddress(0x60000)).unwrap();
    assert_eq!(words, [1, 2, 3, 4, 5, 6]);
    assert_eq!(s.gprs[0] & 0xff, 7, "in al, dx");
    assert_eq!(s.gprs[1], 0);
    assert_eq!(s.gprs[6], 0x50005);
    assert_eq!(s.gprs[7], 0x60006);
}

#[test]
fn protected_mode_int_iret_far_call_and_return() {
    let target = (CODE + 15) as u32;
    let mut code = vec![0xcd, 0x40, 0xbb, 1, 0, 0, 0, 0x9a];
    code.extend(target.to_le_bytes());
    code.extend([0x18, 0x00, 0xf4, 0xb9, 2, 0, 0, 0, 0xcb]);
    let mut m = Machine::new(&code, &[(0x40, &[0xcf])], &[]);
    protected_mode(&mut m);
    let exit = m.run();
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    let s = m.state();
    assert_eq!(
        s.rip,
        CODE + 15,
        "halted after the hlt following the far call"
    );
    assert_eq!(s.gprs[3], 1, "resumed after int 0x40");
    assert_eq!(s.gprs[1], 2, "far call target ran");
    assert_eq!(s.gprs[4], STACK_TOP, "stack balanced");
    assert_eq!(s.cs.selector, 0x18);
}

#[test]
fn invlpg_makes_a_changed_mapping_visible() {
    // mov al, [0x6000]; <page 6 remapped to 0x7000 by the stores below>
    // invlpg [0x6000]; mov bl, [0x6000]
    let code = [
        0x8a, 0x04, 0x25, 0x00, 0x60, 0x00, 0x00, // mov al, [0x6000]
        0xc6, 0x04, 0x25, 0x30, 0x40, 0x00, 0x00,
        0x03, // mov byte [0x4030], 3 (PTE 6 low byte)
        0xc6, 0x04, 0x25, 0x31, 0x40, 0x00, 0x00, 0x70, // mov byte [0x4031], 0x70
        0x0f, 0x01, 0x3c, 0x25, 0x00, 0x60, 0x00, 0x00, // invlpg [0x6000]
        0x8a, 0x1c, 0x25, 0x00, 0x60, 0x00, 0x00, // mov bl, [0x6000]
        0xf4,
    ];
    let mut m = Machine::new(&code, &[], &[]);
    m.mem.write_obj(0x11u8, GuestAddress(0x6000)).unwrap();
    m.mem.write_obj(0x22u8, GuestAddress(0x7000)).unwrap();
    let exit = m.run();
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    let s = m.state();
    assert_eq!(s.gprs[0] & 0xff, 0x11);
    assert_eq!(s.gprs[3] & 0xff, 0x22);
}

// ---- SSE ----

const OSFXSR: u64 = 1 << 9;
const OSXMMEXCPT: u64 = 1 << 10;
const TS: u64 = 1 << 3;
const EM: u64 = 1 << 2;

/// A machine running `code` with these CR0 and CR4 bits added.
fn sse_machine(code: &[u8], cr0: u64, cr4: u64) -> Machine {
    let mut m = Machine::new(code, &[], &[]);
    let mut st = m.state();
    st.cr0 |= cr0;
    st.cr4 |= cr4;
    m.vm.set_state(st);
    m
}

const XORPS: [u8; 4] = [0x0f, 0x57, 0xc0, 0xf4]; // xorps xmm0, xmm0; hlt

#[test]
fn sse_needs_osfxsr_and_no_em() {
    let mut m = sse_machine(&XORPS, 0, 0);
    m.halted_in_handler(6);
    assert_eq!(m.stack(1)[0], CODE);
    let mut m = sse_machine(&XORPS, EM, OSFXSR);
    m.halted_in_handler(6);
}

#[test]
fn sse_with_ts_is_device_not_available_until_clts() {
    let mut m = sse_machine(&XORPS, TS, OSFXSR);
    m.halted_in_handler(7);
    assert_eq!(m.stack(1)[0], CODE);
    // clts; xorps xmm0, xmm0; hlt
    let mut m = sse_machine(&[0x0f, 0x06, 0x0f, 0x57, 0xc0, 0xf4], TS, OSFXSR);
    m.vm.cpu().state.xmm[0] = [1, 2];
    let exit = m.run();
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    assert_eq!(m.state().rip, CODE + 6);
    assert_eq!(m.vm.cpu().state.xmm[0], [0, 0]);
}

/// divss xmm0, xmm1 with xmm1 = 0 and ZE unmasked: #XM with OSXMMEXCPT,
/// #UD without; the destination keeps its value, MXCSR gets ZE.
#[test]
fn unmasked_simd_exception_is_xm_or_ud() {
    for (cr4, vector, jit) in [
        (OSFXSR | OSXMMEXCPT, 19, false),
        (OSFXSR, 6, false),
        (OSFXSR | OSXMMEXCPT, 19, true),
        (OSFXSR, 6, true),
    ] {
        let mut m = sse_machine(&[0xf3, 0x0f, 0x5e, 0xc1, 0xf4], 0, cr4);
        if jit {
            m.vm.engine = Engine::Jit;
        }
        let one = 1.0f32.to_bits() as u64;
        m.vm.cpu().state.xmm[0] = [one, 7];
        m.vm.cpu().state.xmm[1] = [0, 0];
        m.vm.cpu().state.mxcsr = 0x1f80 & !(1 << 9);
        m.halted_in_handler(vector);
        assert_eq!(m.stack(1)[0], CODE, "rip of divss");
        assert_eq!(m.vm.cpu().state.xmm[0], [one, 7]);
        assert_eq!(m.vm.cpu().state.mxcsr, 0x1d84);
    }
    // Masked: infinity and ZE, no fault.
    let mut m = sse_machine(&[0xf3, 0x0f, 0x5e, 0xc1, 0xf4], 0, OSFXSR | OSXMMEXCPT);
    m.vm.cpu().state.xmm[0] = [1.0f32.to_bits() as u64, 0];
    let exit = m.run();
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    assert_eq!(m.vm.cpu().state.xmm[0][0], f32::INFINITY.to_bits() as u64);
    assert_eq!(m.vm.cpu().state.mxcsr, 0x1f84);
}

#[test]
fn misaligned_movaps_is_gp_and_movups_is_not() {
    // mov eax, 0x5008; movaps xmm0, [rax]; hlt
    let mut m = sse_machine(&[0xb8, 0x08, 0x50, 0, 0, 0x0f, 0x28, 0x00, 0xf4], 0, OSFXSR);
    m.halted_in_handler(13);
    assert_eq!(m.stack(2), [0, CODE + 5]);
    // mov eax, 0x5008; movups xmm0, [rax]; hlt
    let mut m = sse_machine(&[0xb8, 0x08, 0x50, 0, 0, 0x0f, 0x10, 0x00, 0xf4], 0, OSFXSR);
    m.mem.write_obj(0x1122u64, GuestAddress(0x5008)).unwrap();
    m.mem.write_obj(0x3344u64, GuestAddress(0x5010)).unwrap();
    let exit = m.run();
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    assert_eq!(m.vm.cpu().state.xmm[0], [0x1122, 0x3344]);
}

#[test]
fn ldmxcsr_with_a_reserved_bit_is_gp() {
    // ldmxcsr [0x5000]; hlt
    let code = [0x0f, 0xae, 0x14, 0x25, 0x00, 0x50, 0x00, 0x00, 0xf4];
    let mut m = sse_machine(&code, 0, OSFXSR);
    m.mem.write_obj(0x1_1f80u32, GuestAddress(0x5000)).unwrap();
    m.halted_in_handler(13);
    assert_eq!(m.vm.cpu().state.mxcsr, 0x1f80);
    let mut m = sse_machine(&code, 0, OSFXSR);
    m.mem.write_obj(0x7f80u32, GuestAddress(0x5000)).unwrap();
    let exit = m.run();
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    assert_eq!(m.vm.cpu().state.mxcsr, 0x7f80);
}

/// An unaligned 16-byte store whose second half is on an unmapped page
/// faults before writing its first half.
#[test]
fn page_crossing_movups_store_is_precise() {
    // movups [UNMAPPED - 8], xmm0; hlt
    let mut code = vec![0x0f, 0x11, 0x04, 0x25];
    code.extend(((UNMAPPED - 8) as u32).to_le_bytes());
    code.push(0xf4);
    for jit in [false, true] {
        let mut m = sse_machine(&code, 0, OSFXSR);
        if jit {
            m.vm.engine = Engine::Jit;
        }
        m.vm.cpu().state.xmm[0] = [u64::MAX, u64::MAX];
        m.mem
            .write_obj(0x0123_4567_89ab_cdefu64, GuestAddress(UNMAPPED - 8))
            .unwrap();
        let s = m.halted_in_handler(14);
        assert_eq!(s.cr2, UNMAPPED);
        let v: u64 = m.mem.read_obj(GuestAddress(UNMAPPED - 8)).unwrap();
        assert_eq!(v, 0x0123_4567_89ab_cdef);
    }
}

#[test]
fn fxsave_and_fxrstor_round_trip() {
    // fxsave [0x5000]; pxor xmm3, xmm3; ldmxcsr [0x6000]; fxrstor [0x5000]; hlt
    let code = [
        0x0f, 0xae, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, // fxsave
        0x66, 0x0f, 0xef, 0xdb, // pxor xmm3, xmm3
        0x0f, 0xae, 0x14, 0x25, 0x00, 0x60, 0x00, 0x00, // ldmxcsr
        0x0f, 0xae, 0x0c, 0x25, 0x00, 0x50, 0x00, 0x00, // fxrstor
        0xf4,
    ];
    for jit in [false, true] {
        let mut m = sse_machine(&code, 0, OSFXSR);
        if jit {
            m.vm.engine = Engine::Jit;
        }
        m.mem.write_obj(0x9f80u32, GuestAddress(0x6000)).unwrap();
        for (k, x) in m.vm.cpu().state.xmm[..16].iter_mut().enumerate() {
            *x = [k as u64 * 0x1111, !(k as u64)];
        }
        m.vm.cpu().state.mxcsr = 0x3f81;
        let before = m.vm.cpu().state.xmm;
        let exit = m.run();
        assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
        assert_eq!(m.vm.cpu().state.xmm[..16], before[..16]);
        assert_eq!(m.vm.cpu().state.mxcsr, 0x3f81);
        let rd = |a: u64| -> u64 { m.mem.read_obj(GuestAddress(a)).unwrap() };
        assert_eq!(rd(0x5000) & 0xffff, 0x37f, "FCW");
        assert_eq!(rd(0x5018), 0xffff_0000_3f81, "MXCSR and MXCSR_MASK");
        assert_eq!(rd(0x5000 + 160 + 3 * 16), 3 * 0x1111, "xmm3");
        assert_eq!(rd(0x5000 + 160 + 15 * 16 + 8), !15u64, "xmm15 high");
    }
}

/// Random SSE-shaped bytes (prefixes, 0F opcodes, modrm, displacements)
/// with random XMM contents and a random MXCSR, unmasked exceptions
/// included, on the interpreter and on the JIT: faults, #XM and #UD, never
/// a panic.
#[test]
fn random_sse_code_never_panics() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for case in 0..200 {
        let mut code = Vec::new();
        while code.len() < 480 {
            let r = next();
            if let Some(&p) = [0x66u8, 0xf2, 0xf3].get((r % 5) as usize) {
                code.push(p);
            }
            if r & 0x30 == 0 {
                code.push(0x40 | ((r >> 8) & 0xf) as u8);
            }
            code.push(0x0f);
            code.extend(next().to_le_bytes()[..(2 + (r >> 12) % 5) as usize].iter());
        }
        let cr4 = if case % 3 == 0 {
            OSFXSR
        } else {
            OSFXSR | OSXMMEXCPT
        };
        let mut m = sse_machine(&code, 0, cr4);
        if case % 2 == 1 {
            m.vm.engine = Engine::Jit;
        }
        for v in m.vm.cpu().state.xmm.iter_mut() {
            *v = [next(), next()];
        }
        m.vm.cpu().state.mxcsr = next() & 0xffff;
        let mut st = m.state();
        for r in st.gprs.iter_mut() {
            *r = next() & 0x1f_ffff;
        }
        st.gprs[4] = STACK_TOP;
        m.vm.set_state(st);
        m.vm.deadline = RANDOM_DEADLINE;
        let _ = m.run();
    }
}

/// SSE in 32-bit protected mode (xmm0-7, 32-bit addressing).
#[test]
fn sse_in_protected_mode() {
    // mov eax, 0x5000; movaps xmm1, [eax]; addps xmm1, xmm1;
    // movups [eax+20], xmm1; cvttss2si ecx, xmm1; hlt
    let code = [
        0xb8, 0x00, 0x50, 0x00, 0x00, 0x0f, 0x28, 0x08, 0x0f, 0x58, 0xc9, 0x0f, 0x11, 0x48, 0x14,
        0xf3, 0x0f, 0x2c, 0xc9, 0xf4,
    ];
    let mut m = Machine::new(&code, &[], &[]);
    protected_mode(&mut m);
    let mut st = m.state();
    st.cr4 |= OSFXSR;
    m.vm.set_state(st);
    for (k, v) in [1.5f32, -2.0, 3.25, 1e30].into_iter().enumerate() {
        m.mem
            .write_obj(v.to_bits(), GuestAddress(0x5000 + 4 * k as u64))
            .unwrap();
    }
    let exit = m.run();
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
    let out: Vec<f32> = (0..4)
        .map(|k| f32::from_bits(m.mem.read_obj(GuestAddress(0x5014 + 4 * k)).unwrap()))
        .collect();
    assert_eq!(out, [3.0, -4.0, 6.5, 2e30]);
    assert_eq!(m.state().gprs[1], 3);
}
