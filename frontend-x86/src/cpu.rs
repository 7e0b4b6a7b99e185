//! [`X86Cpu`]: the [`GuestCpu`] the exec loop runs, and everything finished
//! in Rust: exception and interrupt delivery, port I/O, segment loads, far
//! transfers, control registers and MSRs.
//!
//! # Real mode
//!
//! With CR0.PE = 0, segment loads (`mov sreg`, `pop sreg`, `lds` and
//! friends, far jumps, calls and returns, `iret`, interrupts) set the
//! selector and base = selector << 4 and keep the cached limit and
//! attributes. Switching modes (`mov cr0`, a far jump) leaves translated
//! code, so the next block is looked up with the new mode's TB flags.
//! [`X86Cpu::reset_to_init`] and [`X86Cpu::start_at_sipi`] give the INIT and
//! start-up-IPI states.
//!
//! # Exceptions
//!
//! [`X86Cpu::exception`] delivers through the IDT: 32-bit interrupt and trap
//! gates in protected mode, 64-bit gates (with IST) in long mode, with a
//! stack switch through the TSS when the privilege level changes; in real
//! mode through the IVT (4-byte IP, CS entries, a FLAGS, CS, IP frame).
//! Delivery builds the whole frame before it writes anything, so a fault while
//! delivering leaves the state as it was and becomes the next exception by
//! the manual's table: benign then anything is handled serially;
//! contributory after contributory, and contributory or #PF after #PF, is a
//! double fault; a fault while delivering a double fault is a triple fault,
//! which ends the run with a [`Crash`] (cause "triple fault").

use accel_tcg::guest::{CodeReader, FetchFault, GuestCpu, GuestEvent, Platform};
use accel_tcg::ir::Block;
use accel_tcg::softmmu::{Access, CpuState as _, MemFault};
use devices::{LifecycleEvent, Startup};
use machine::{CpuState as MachineCpuState, Crash, VcpuExit};
use vm_memory::GuestMemoryMmap;

use crate::mmu::{self, Fault, X86Walker};
use crate::state::{SegCache, X86State, attr, ctl, rflags, seg};
use crate::translate::{self, status, tbflags};

/// An exception to deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exc {
    /// Vector.
    pub vector: u8,
    /// Error code, if the vector pushes one.
    pub error: Option<u32>,
    /// The faulting address, for #PF.
    pub cr2: Option<u64>,
}

impl Exc {
    /// An exception without error code.
    pub const fn new(vector: u8) -> Exc {
        Exc {
            vector,
            error: None,
            cr2: None,
        }
    }

    /// An exception with an error code.
    pub const fn err(vector: u8, error: u32) -> Exc {
        Exc {
            vector,
            error: Some(error),
            cr2: None,
        }
    }

    /// #GP(error)
    pub const fn gp(error: u32) -> Exc {
        Exc::err(status::GP, error)
    }

    /// The exception a memory fault at `vaddr` raises.
    pub fn from_fault(f: Fault, vaddr: u64) -> Exc {
        match f {
            Fault::Page(e) => Exc {
                vector: status::PF,
                error: Some(e),
                cr2: Some(vaddr),
            },
            Fault::General => Exc::gp(0),
            Fault::Stack => Exc::err(status::SS, 0),
        }
    }
}

#[derive(PartialEq, Eq)]
enum Class {
    Benign,
    Contributory,
    PageFault,
}

fn class(v: u8) -> Class {
    match v {
        0 | 10..=13 => Class::Contributory,
        14 => Class::PageFault,
        _ => Class::Benign,
    }
}

/// IA32_APIC_BASE at reset: enabled (bit 11) at 0xfee0_0000, BSP (bit 8).
const APIC_BASE_BSP: u64 = 0xfee0_0900;
const APIC_BASE_AP: u64 = 0xfee0_0800;

/// The non-maskable interrupt's vector.
const NMI_VECTOR: u8 = 2;

/// An x86-64 vCPU for the translator.
pub struct X86Cpu {
    /// The state translated code runs against.
    pub state: Box<X86State>,
    /// Stopped in `hlt` until an interrupt (or NMI, INIT) arrives.
    halted: bool,
    /// After INIT (or powered off from the start): waits for a start-up IPI.
    waiting_for_sipi: bool,
}

impl Default for X86Cpu {
    fn default() -> Self {
        X86Cpu::new()
    }
}

impl X86Cpu {
    /// A vCPU in moat's reset state (set an entry state before running).
    pub fn new() -> X86Cpu {
        X86Cpu {
            state: Box::new(X86State::new()),
            halted: false,
            waiting_for_sipi: false,
        }
    }

    /// Makes this CPU number `index` of the machine, ticking with `clock`:
    /// its APIC ID, its APIC base (the BSP flag on CPU 0) and its TSC.
    pub fn attach(&mut self, index: u32, clock: std::sync::Arc<devices::Clock>) {
        self.state.cpu_index = u64::from(index);
        self.state.apic_base = if index == 0 {
            APIC_BASE_BSP
        } else {
            APIC_BASE_AP
        };
        self.state.clock = Some(clock);
    }

    /// Makes this CPU a secondary one that starts powered off: it runs only
    /// once a start-up IPI arrives.
    pub fn power_off(&mut self) {
        self.waiting_for_sipi = true;
        self.halted = false;
    }

    fn interrupts_enabled(&self) -> bool {
        self.state.rflags() & rflags::IF != 0
    }

    /// Waits, parked if only another CPU could end the wait (halted with IF
    /// clear, or waiting for a start-up IPI). When every CPU is parked and
    /// none has an INIT, SIPI or NMI on its way, nothing can ever wake the
    /// machine (its board has no NMI source): the run ends as halted.
    fn park_if_stuck(&mut self, platform: &Platform<'_>) -> GuestEvent {
        let stuck = self.waiting_for_sipi || (self.halted && !self.interrupts_enabled());
        if !stuck {
            platform.lifecycle.set_parked(platform.cpu, false);
            return GuestEvent::Wait;
        }
        let all_parked = platform.lifecycle.set_parked(platform.cpu, true);
        if all_parked && (0..platform.cpus).all(|cpu| !platform.interrupts.wake_pending(cpu)) {
            return GuestEvent::Exit(VcpuExit::Halted {
                pc: self.state.pc(),
            });
        }
        GuestEvent::Wait
    }

    /// Takes an INIT or start-up IPI addressed to this CPU. Returns whether
    /// the CPU now runs code (a SIPI while waiting for one).
    fn take_startup(&mut self, platform: &Platform<'_>) -> bool {
        match platform.interrupts.take_startup(platform.cpu) {
            Some(Startup::Init) => {
                self.reset_to_init();
                self.waiting_for_sipi = true;
                self.halted = false;
                false
            }
            Some(Startup::Sipi(vector)) if self.waiting_for_sipi => {
                self.start_at_sipi(vector);
                self.waiting_for_sipi = false;
                self.halted = false;
                true
            }
            Some(other) => {
                log::debug!(
                    "x86 cpu {}: start-up request {other:?} ignored",
                    platform.cpu
                );
                false
            }
            None => false,
        }
    }

    /// The state after an INIT (SDM Vol. 3A, "Processor State After Reset",
    /// Table 9-1, "INIT" column): real mode at CS:IP = F000:FFF0 with the CS
    /// base FFFF0000 (the reset vector, linear FFFFFFF0), EFLAGS 2, every other segment
    /// selector 0 base 0 limit FFFF, GDTR and IDTR base 0 limit FFFF,
    /// CR2-CR4 and EFER 0, general registers 0 except EDX = the processor
    /// signature (cpuid leaf 1's EAX), DR6 FFFF0FF0. CR0 is 60000010 (CD,
    /// NW and ET; moat has no caches, so "CD and NW unchanged" is not
    /// modelled). The x87/SSE state, the TSC and the other MSRs are kept, as
    /// INIT keeps them. Waiting for a SIPI is the board's business.
    pub fn reset_to_init(&mut self) {
        let s = &mut *self.state;
        let data = SegCache {
            selector: 0,
            base: 0,
            limit: 0xffff,
            attrs: attr::P | attr::S | 0x3,
        };
        s.segs = [data; 6];
        s.segs[seg::CS] = SegCache {
            selector: 0xf000,
            base: 0xffff_0000,
            limit: 0xffff,
            attrs: attr::P | attr::S | 0xb,
        };
        s.ldtr = SegCache {
            attrs: attr::P | 0x2,
            ..data
        };
        s.tr = SegCache {
            attrs: attr::P | 0xb,
            ..data
        };
        s.gdt_base = 0;
        s.gdt_limit = 0xffff;
        s.idt_base = 0;
        s.idt_limit = 0xffff;
        s.regs = [0; 16];
        s.regs[2] = translate::system::cpuid(1, 0, s.cpu_index)[0] as u64;
        s.rip = 0xfff0;
        s.set_rflags(rflags::FIXED);
        s.cr0 = ctl::CR0_CD | ctl::CR0_NW | ctl::CR0_ET;
        s.cr2 = 0;
        s.cr3 = 0;
        s.cr4 = 0;
        s.cr8 = 0;
        s.efer = 0;
        s.cpl = 0;
        s.dr6 = crate::state::DR6_RESET;
        s.header.tlb.flush();
    }

    /// Starts the vCPU as an application processor receiving a start-up IPI
    /// with `vector` after INIT (SDM Vol. 3A, "MP Initialization
    /// Protocol Algorithm" and the ICR's "Start-Up" delivery mode):
    /// the [`X86Cpu::reset_to_init`] state with CS selector `vector << 8`,
    /// base `vector << 12`, limit FFFF and IP 0, so the first instruction is
    /// at physical `vector << 12`.
    pub fn start_at_sipi(&mut self, vector: u8) {
        self.reset_to_init();
        let cs = &mut self.state.segs[seg::CS];
        cs.selector = (vector as u64) << 8;
        cs.base = (vector as u64) << 12;
        cs.limit = 0xffff;
        self.state.rip = 0;
    }

    /// Guest disassembly for `--trace in_asm` (see [`translate::disassemble`]).
    pub fn disassemble(&self, pc: u64, flags: u64, bytes: &[u8]) -> Vec<String> {
        translate::disassemble(pc, flags, bytes)
    }

    fn cs_base(&self) -> u64 {
        if self.state.code64() {
            0
        } else {
            self.state.segs[seg::CS].base
        }
    }

    fn rip_of(&self, pc: u64) -> u64 {
        let r = pc.wrapping_sub(self.cs_base());
        if self.state.code64() {
            r
        } else {
            r & 0xffff_ffff
        }
    }

    /// The walker for implicit supervisor accesses (descriptor tables, TSS).
    fn sys_walker(&self) -> X86Walker {
        X86Walker {
            cpl: 0,
            ..self.walker()
        }
    }

    fn read_u64(&self, mem: &GuestMemoryMmap, w: &X86Walker, va: u64) -> Result<u64, Exc> {
        let mut b = [0u8; 8];
        mmu::read_virt(w, mem, va, &mut b).map_err(|f| Exc::from_fault(f, va))?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a value of `bytes` at a stack offset.
    fn read_stack(&self, mem: &GuestMemoryMmap, sp: u64, bytes: u32) -> Result<u64, Exc> {
        let w = self.walker();
        let va = self.stack_linear(sp);
        let mut b = [0u8; 8];
        mmu::read_virt(&w, mem, va, &mut b[..bytes as usize])
            .map_err(|f| Exc::from_fault(stackify(f), va))?;
        Ok(u64::from_le_bytes(b))
    }

    fn stack_linear(&self, sp: u64) -> u64 {
        if self.state.code64() {
            sp
        } else {
            (sp & self.stack_mask()).wrapping_add(self.state.segs[seg::SS].base) & 0xffff_ffff
        }
    }

    /// The bits of rsp the stack uses: all in 64-bit mode, else esp or sp
    /// by SS.B (SDM Vol. 1, "Stack": a 16-bit stack wraps at 64 KiB).
    fn stack_mask(&self) -> u64 {
        if self.state.code64() {
            u64::MAX
        } else if self.state.segs[seg::SS].attrs & attr::DB != 0 {
            0xffff_ffff
        } else {
            0xffff
        }
    }

    /// Real-address mode (CR0.PE = 0); virtual-8086 mode is not modelled.
    fn real_mode(&self) -> bool {
        self.state.cr0 & ctl::CR0_PE == 0
    }

    /// A segment register loaded in real mode: selector and base =
    /// selector << 4; the limit and attributes stay as cached, as on
    /// hardware (SDM Vol. 3, "8086 Emulation", "Address Translation in
    /// Real-Address Mode"), so "unreal mode" keeps a 4 GiB limit.
    fn real_seg(old: SegCache, sel: u16) -> SegCache {
        SegCache {
            selector: sel as u64,
            base: (sel as u64) << 4,
            limit: old.limit,
            attrs: (old.attrs & !attr::UNUSABLE) | attr::P | attr::S,
        }
    }

    /// Reads the GDT descriptor for `sel` (LDT selectors are refused).
    fn descriptor(&self, mem: &GuestMemoryMmap, sel: u16) -> Result<u64, Exc> {
        let idx = (sel & !7) as u64;
        if sel & 4 != 0 || idx + 7 > self.state.gdt_limit {
            return Err(Exc::gp((sel & 0xfffc) as u32));
        }
        self.read_u64(
            mem,
            &self.sys_walker(),
            self.state.gdt_base.wrapping_add(idx),
        )
    }

    fn flush_tlb(&mut self) {
        self.state.header.tlb.flush();
    }

    fn lifecycle_event(platform: &Platform<'_>) -> GuestEvent {
        match platform.lifecycle.pending() {
            Some(LifecycleEvent::Shutdown(s)) => GuestEvent::Exit(VcpuExit::Shutdown(s)),
            Some(LifecycleEvent::Reset) => GuestEvent::Exit(VcpuExit::Reset),
            None => GuestEvent::Continue,
        }
    }

    /// Delivers `exc` for the instruction at `rip` (the return address the
    /// frame holds is `ret_rip`), escalating to #DF and a triple fault.
    pub fn exception(
        &mut self,
        exc: Exc,
        ret_rip: u64,
        soft: bool,
        platform: &Platform<'_>,
    ) -> GuestEvent {
        let mut cur = exc;
        let mut soft = soft;
        for _ in 0..4 {
            if let Some(a) = cur.cr2 {
                self.state.cr2 = a;
            }
            match self.deliver(cur, ret_rip, soft, platform.memory) {
                Ok(()) => return GuestEvent::Continue,
                Err(next) => {
                    log::debug!(
                        "x86: exception {} while delivering {}",
                        next.vector,
                        cur.vector
                    );
                    if cur.vector == status::DF {
                        break;
                    }
                    let double = matches!(
                        (class(cur.vector), class(next.vector)),
                        (Class::Contributory, Class::Contributory)
                            | (Class::PageFault, Class::Contributory | Class::PageFault)
                    );
                    cur = if double {
                        Exc::err(status::DF, 0)
                    } else {
                        next
                    };
                    soft = false;
                }
            }
        }
        let pc = self.state.pc();
        GuestEvent::Exit(VcpuExit::Crashed(Crash {
            cause: "triple fault",
            pc: pc_of(self, ret_rip, pc),
        }))
    }

    /// One delivery attempt; on failure nothing has changed.
    fn deliver(
        &mut self,
        exc: Exc,
        ret_rip: u64,
        soft: bool,
        mem: &GuestMemoryMmap,
    ) -> Result<(), Exc> {
        let s = &*self.state;
        let v = exc.vector as u64;
        let ext = if soft { 0 } else { 1 };
        let idt_err = (v * 8 + 2 + ext) as u32;
        let long = s.efer & ctl::EFER_LMA != 0;
        if s.cr0 & ctl::CR0_PE == 0 {
            return self.deliver_real(exc.vector, ret_rip, mem);
        }
        let esize = if long { 16 } else { 8 };
        if v * esize + esize - 1 > s.idt_limit {
            return Err(Exc::gp(idt_err));
        }
        let sw = self.sys_walker();
        let lo = self.read_u64(mem, &sw, s.idt_base.wrapping_add(v * esize))?;
        let hi = if long {
            self.read_u64(mem, &sw, s.idt_base.wrapping_add(v * esize + 8))?
        } else {
            0
        };
        let gtype = (lo >> 40) & 0xf;
        let gdpl = (lo >> 45) & 3;
        let valid = if long {
            matches!(gtype, 0xe | 0xf)
        } else {
            matches!(gtype, 0xe | 0xf)
        };
        if !valid {
            return Err(Exc::gp(idt_err));
        }
        if soft && gdpl < s.cpl {
            return Err(Exc::gp(idt_err));
        }
        if lo & (1 << 47) == 0 {
            return Err(Exc::err(status::NP, idt_err));
        }
        let sel = ((lo >> 16) & 0xffff) as u16;
        let mut target = (lo & 0xffff) | ((lo >> 32) & 0xffff_0000);
        if long {
            target |= (hi & 0xffff_ffff) << 32;
        }
        if sel & !3 == 0 {
            return Err(Exc::gp(ext as u32));
        }
        let cdesc = self.descriptor(mem, sel)?;
        let code = SegCache::from_descriptor(sel & !3, cdesc);
        if code.attrs & attr::S == 0 || code.attrs & 0x8 == 0 {
            return Err(Exc::gp((sel & 0xfffc) as u32));
        }
        if code.attrs & attr::P == 0 {
            return Err(Exc::err(status::NP, (sel & 0xfffc) as u32));
        }
        let new_cpl = if code.attrs & 0x4 != 0 {
            s.cpl
        } else {
            code.dpl()
        };
        if new_cpl > s.cpl {
            return Err(Exc::gp((sel & 0xfffc) as u32));
        }
        if long && code.attrs & attr::L == 0 {
            return Err(Exc::gp((sel & 0xfffc) as u32));
        }
        let old_flags = s.rflags();
        let old_cs = s.segs[seg::CS].selector;
        let old_ss = s.segs[seg::SS].selector;
        let old_rsp = s.regs[4];
        let ist = if long { (lo >> 32) & 7 } else { 0 };
        let switch = new_cpl < s.cpl;
        let mut new_ss: Option<SegCache> = None;
        let mut sp = old_rsp;
        let mut frame: Vec<u64> = Vec::with_capacity(6);
        let slot = if long { 8u32 } else { 4 };
        if long {
            if switch || ist != 0 {
                let off = if ist != 0 {
                    0x24 + (ist - 1) * 8
                } else {
                    4 + new_cpl * 8
                };
                sp = self.read_u64(mem, &sw, s.tr.base.wrapping_add(off))?;
                if switch {
                    new_ss = Some(SegCache {
                        selector: new_cpl,
                        attrs: attr::UNUSABLE | attr::DB,
                        ..SegCache::default()
                    });
                }
            }
            sp &= !0xf;
            frame.extend([old_ss, old_rsp, old_flags, old_cs, ret_rip]);
        } else {
            if switch {
                let esp = self.read_u64(mem, &sw, s.tr.base.wrapping_add(4 + new_cpl * 8))?;
                let ss_sel = ((esp >> 32) & 0xffff) as u16;
                let ss_desc = self
                    .descriptor(mem, ss_sel)
                    .map_err(|_| Exc::err(status::TS, (ss_sel & 0xfffc) as u32))?;
                new_ss = Some(SegCache::from_descriptor(ss_sel, ss_desc));
                sp = esp & 0xffff_ffff;
                frame.extend([old_ss, old_rsp & 0xffff_ffff]);
            }
            frame.extend([old_flags & 0xffff_ffff, old_cs, ret_rip & 0xffff_ffff]);
        }
        if let Some(e) = exc.error {
            frame.push(e as u64);
        }
        let len = frame.len() as u64 * slot as u64;
        let new_sp = sp.wrapping_sub(len);
        let mut bytes = Vec::with_capacity(len as usize);
        for w in frame.iter().rev() {
            bytes.extend_from_slice(&w.to_le_bytes()[..slot as usize]);
        }
        let ss_base = match (&new_ss, long) {
            (_, true) => 0,
            (Some(n), false) => n.base,
            (None, false) => s.segs[seg::SS].base,
        };
        let lin = if long {
            new_sp
        } else {
            (new_sp & 0xffff_ffff).wrapping_add(ss_base) & 0xffff_ffff
        };
        if long && ((lin << 16) as i64 >> 16) as u64 != lin {
            return Err(Exc::err(status::SS, 0));
        }
        let pw = X86Walker {
            cpl: new_cpl,
            ..self.walker()
        };
        mmu::write_virt(&pw, mem, lin, &bytes).map_err(|f| Exc::from_fault(stackify(f), lin))?;
        // Commit.
        let s = &mut *self.state;
        if let Some(n) = new_ss {
            s.segs[seg::SS] = n;
        }
        s.regs[4] = if long {
            new_sp
        } else {
            (s.regs[4] & !0xffff_ffff) | (new_sp & 0xffff_ffff)
        };
        let mut cs = code;
        cs.selector = (sel & !3) as u64 | new_cpl;
        s.segs[seg::CS] = cs;
        // Each privilege has its own soft-MMU index: no flush.
        s.cpl = new_cpl;
        s.rip = if long { target } else { target & 0xffff_ffff };
        let mut clear = rflags::TF | rflags::NT | rflags::RF | rflags::VM;
        if (lo >> 40) & 0xf == 0xe {
            clear |= rflags::IF;
        }
        s.eflags &= !clear;
        Ok(())
    }

    /// Delivery in real-address mode (SDM Vol. 3, "8086 Emulation", "Interrupt and
    /// Exception Handling", and Vol. 2A,
    /// INT n, "REAL-ADDRESS-MODE"): the IVT at IDTR.base holds 4-byte
    /// entries (IP, then CS); FLAGS, CS and IP are pushed as words, IF, TF
    /// and AC are cleared, and no error code is pushed.
    fn deliver_real(&mut self, vector: u8, ret_rip: u64, mem: &GuestMemoryMmap) -> Result<(), Exc> {
        let s = &*self.state;
        let v = vector as u64;
        if v * 4 + 3 > s.idt_limit {
            return Err(Exc::gp(0));
        }
        let mut b = [0u8; 4];
        mmu::read_virt(
            &self.sys_walker(),
            mem,
            s.idt_base.wrapping_add(v * 4),
            &mut b,
        )
        .map_err(|f| Exc::from_fault(f, s.idt_base.wrapping_add(v * 4)))?;
        let entry = u32::from_le_bytes(b);
        let old_cs = s.segs[seg::CS].selector;
        let nsp = self.push_frame(mem, &[s.rflags() & 0xffff, old_cs, ret_rip & 0xffff], 2)?;
        self.write_sp(nsp);
        self.set_cs(Self::real_seg(
            self.state.segs[seg::CS],
            (entry >> 16) as u16,
        ));
        self.state.rip = (entry & 0xffff) as u64;
        self.state.eflags &= !(rflags::IF | rflags::TF | rflags::AC);
        Ok(())
    }

    /// Loads a data or stack segment register with `sel`.
    fn load_seg(&mut self, sidx: usize, sel: u16, mem: &GuestMemoryMmap) -> Result<(), Exc> {
        if self.real_mode() {
            self.state.segs[sidx] = Self::real_seg(self.state.segs[sidx], sel);
            return Ok(());
        }
        let s = &*self.state;
        let rpl = (sel & 3) as u64;
        if sel & !3 == 0 {
            if sidx == seg::SS && !(s.code64() && s.cpl != 3) {
                return Err(Exc::gp(0));
            }
            self.state.segs[sidx] = SegCache {
                selector: sel as u64,
                attrs: attr::UNUSABLE,
                ..SegCache::default()
            };
            return Ok(());
        }
        let desc = self.descriptor(mem, sel)?;
        let c = SegCache::from_descriptor(sel, desc);
        let e = Exc::gp((sel & 0xfffc) as u32);
        if c.attrs & attr::S == 0 {
            return Err(e);
        }
        let is_code = c.attrs & 0x8 != 0;
        let writable = !is_code && c.attrs & 0x2 != 0;
        let readable = !is_code || c.attrs & 0x2 != 0;
        if sidx == seg::SS {
            if !writable || rpl != s.cpl || c.dpl() != s.cpl {
                return Err(e);
            }
            if c.attrs & attr::P == 0 {
                return Err(Exc::err(status::SS, (sel & 0xfffc) as u32));
            }
        } else {
            if !readable {
                return Err(e);
            }
            if c.attrs & attr::P == 0 {
                return Err(Exc::err(status::NP, (sel & 0xfffc) as u32));
            }
        }
        self.state.segs[sidx] = c;
        Ok(())
    }

    /// Loads CS for a far transfer to `sel:off` at the same privilege level.
    fn far_target(&self, sel: u16, mem: &GuestMemoryMmap) -> Result<SegCache, Exc> {
        if self.real_mode() {
            // SDM Vol. 2A, JMP: in real-address mode CS is loaded with the
            // selector, its base with selector << 4; no descriptor is read.
            return Ok(Self::real_seg(self.state.segs[seg::CS], sel));
        }
        let s = &*self.state;
        if sel & !3 == 0 {
            return Err(Exc::gp(0));
        }
        let desc = self.descriptor(mem, sel)?;
        let mut c = SegCache::from_descriptor(sel, desc);
        let e = Exc::gp((sel & 0xfffc) as u32);
        if c.attrs & attr::S == 0 || c.attrs & 0x8 == 0 {
            // System descriptors (call gates, TSS) are not supported.
            return Err(e);
        }
        let conforming = c.attrs & 0x4 != 0;
        if (conforming && c.dpl() > s.cpl)
            || (!conforming && (c.dpl() != s.cpl || (sel & 3) as u64 > s.cpl))
        {
            return Err(e);
        }
        if c.attrs & attr::P == 0 {
            return Err(Exc::err(status::NP, (sel & 0xfffc) as u32));
        }
        c.selector = (sel as u64 & !3) | s.cpl;
        Ok(c)
    }

    fn set_cs(&mut self, c: SegCache) {
        self.state.segs[seg::CS] = c;
    }

    /// The value pushed or popped for a register of `bytes`.
    fn push_frame(&mut self, mem: &GuestMemoryMmap, vals: &[u64], bytes: u32) -> Result<u64, Exc> {
        let sp = self.state.regs[4];
        let len = vals.len() as u64 * bytes as u64;
        let nsp = sp.wrapping_sub(len) & self.stack_mask();
        let mut data = Vec::with_capacity(len as usize);
        for v in vals.iter().rev() {
            data.extend_from_slice(&v.to_le_bytes()[..bytes as usize]);
        }
        let lin = self.stack_linear(nsp);
        mmu::write_virt(&self.walker(), mem, lin, &data)
            .map_err(|f| Exc::from_fault(stackify(f), lin))?;
        Ok(nsp)
    }

    fn write_sp(&mut self, sp: u64) {
        let m = self.stack_mask();
        self.state.regs[4] = if m == 0xffff {
            (self.state.regs[4] & !m) | (sp & m)
        } else {
            sp & m
        };
    }

    fn set_flags_from(&mut self, v: u64, bytes: u32) {
        let s = &mut *self.state;
        let mut mask = rflags::WRITABLE;
        if s.cpl != 0 {
            mask &= !(rflags::IOPL | rflags::IF);
        }
        if bytes == 2 {
            mask &= 0xffff;
        }
        let old = s.rflags();
        s.set_rflags((old & !mask) | (v & mask));
    }

    /// Runs an instruction finished in Rust; `Err` is an exception to
    /// deliver as a fault at the instruction.
    fn finish(
        &mut self,
        code: u64,
        rip: u64,
        next: u64,
        platform: &Platform<'_>,
    ) -> Result<GuestEvent, Exc> {
        let mem = platform.memory;
        let k = status::kind(code);
        let f = |lo, n| status::field(code, lo, n);
        match k {
            status::SINGLE_STEP => {
                // A trap: the handler returns to the next instruction.
                let target = self.state.scratch[0];
                self.state.rip = target;
                self.state.dr6 |= crate::state::DR6_BS;
                Ok(self.exception(Exc::new(status::DB), target, false, platform))
            }
            status::HLT => {
                self.state.rip = next;
                self.halted = true;
                Ok(self.park_if_stuck(platform))
            }
            status::STI => {
                self.state.rip = next;
                // The interrupt shadow: the instruction after `sti` runs
                // before any interrupt is taken (so `sti; hlt` cannot miss
                // the wake-up it waits for).
                if platform.interrupts.interrupt_pending(platform.cpu) {
                    return Ok(GuestEvent::StepThenPoll);
                }
                Ok(GuestEvent::Continue)
            }
            status::IN | status::OUT => {
                let bytes = f(16, 4) as usize;
                let port = if f(20, 1) != 0 {
                    f(24, 16)
                } else {
                    self.state.regs[2] & 0xffff
                };
                let mut buf = [0xffu8; 4];
                if k == status::OUT {
                    buf = (self.state.regs[0] as u32).to_le_bytes();
                    platform.pio.write(port, &buf[..bytes]);
                } else {
                    platform.pio.read(port, &mut buf[..bytes]);
                    let v = u32::from_le_bytes(buf) as u64;
                    write_reg(&mut self.state.regs[0], v, bytes as u32);
                }
                self.state.rip = next;
                Ok(Self::lifecycle_event(platform))
            }
            status::STRING_IO => self.string_io(code, rip, next, platform),
            status::SOFT_INT => {
                // Software interrupts push the next rip.
                let v = f(16, 8) as u8;
                Ok(self.exception(Exc::new(v), next, true, platform))
            }
            status::EXCEPTION => {
                let e = Exc {
                    vector: f(16, 8) as u8,
                    error: (f(24, 1) != 0).then(|| f(32, 16) as u32),
                    cr2: None,
                };
                Err(e)
            }
            status::MOV_TO_CR => {
                self.mov_to_cr(f(16, 4) as u32, self.state.scratch[0])?;
                self.state.rip = next;
                Ok(GuestEvent::Continue)
            }
            status::LOAD_SEG => {
                let sidx = (f(16, 4) as usize).min(seg::GS);
                let sel = self.state.scratch[0] as u16;
                self.load_seg(sidx, sel, mem)?;
                if f(20, 1) != 0 {
                    self.write_sp(self.state.scratch[1]);
                }
                if f(21, 1) != 0 {
                    let reg = f(32, 4) as usize;
                    write_reg(
                        &mut self.state.regs[reg],
                        self.state.scratch[1],
                        f(24, 4) as u32,
                    );
                }
                self.state.rip = next;
                Ok(GuestEvent::Continue)
            }
            status::FAR_JMP => {
                let call = f(16, 1) != 0;
                let size = f(24, 4) as u32;
                let sel = self.state.scratch[0] as u16;
                let off = self.state.scratch[1];
                let cs = self.far_target(sel, mem)?;
                if call {
                    let old_cs = self.state.segs[seg::CS].selector;
                    let nsp = self.push_frame(mem, &[old_cs, next], size)?;
                    self.write_sp(nsp);
                }
                let long_target = self.state.efer & ctl::EFER_LMA != 0 && cs.attrs & attr::L != 0;
                self.set_cs(cs);
                self.state.rip = match size {
                    _ if long_target => off,
                    2 => off & 0xffff,
                    _ => off & 0xffff_ffff,
                };
                Ok(GuestEvent::Continue)
            }
            status::FAR_RET => {
                let size = f(24, 4) as u32;
                let imm = f(32, 16);
                let sp = self.state.regs[4];
                let nrip = self.read_stack(mem, sp, size)?;
                let sel = self.read_stack(mem, sp.wrapping_add(size as u64), size)? as u16;
                let mut sp2 = sp.wrapping_add(2 * size as u64 + imm);
                let rpl = (sel & 3) as u64;
                if rpl > self.state.cpl && !self.real_mode() {
                    // Return to an outer level: also pop rsp and ss.
                    let nsp = self.read_stack(mem, sp2, size)?;
                    let nss = self.read_stack(mem, sp2.wrapping_add(size as u64), size)? as u16;
                    let old = self.state.cpl;
                    self.state.cpl = rpl;
                    let cs = self.far_target(sel, mem);
                    let cs = match cs {
                        Ok(c) => c,
                        Err(e) => {
                            self.state.cpl = old;
                            return Err(e);
                        }
                    };
                    if let Err(e) = self.load_seg(seg::SS, nss, mem) {
                        self.state.cpl = old;
                        return Err(e);
                    }
                    self.set_cs(cs);
                    sp2 = nsp;
                } else {
                    let cs = self.far_target(sel, mem)?;
                    self.set_cs(cs);
                }
                self.write_sp(sp2);
                self.state.rip = if self.state.code64() {
                    nrip
                } else {
                    nrip & crate::flags::mask(size * 8)
                };
                Ok(GuestEvent::Continue)
            }
            status::IRET => {
                self.iret(f(24, 4) as u32, mem)?;
                Ok(GuestEvent::Continue)
            }
            status::RDMSR => {
                let v = self.rdmsr(self.state.regs[1] as u32)?;
                self.state.regs[0] = v & 0xffff_ffff;
                self.state.regs[2] = v >> 32;
                self.state.rip = next;
                Ok(GuestEvent::Continue)
            }
            status::WRMSR => {
                let v = (self.state.regs[2] << 32) | (self.state.regs[0] & 0xffff_ffff);
                self.wrmsr(self.state.regs[1] as u32, v)?;
                self.state.rip = next;
                Ok(GuestEvent::Continue)
            }
            status::SYSCALL => {
                self.syscall(next)?;
                Ok(GuestEvent::Continue)
            }
            status::SYSRET => {
                self.sysret(f(16, 1) != 0)?;
                Ok(GuestEvent::Continue)
            }
            status::INVLPG => {
                // Large pages occupy many TLB entries: flush everything.
                self.flush_tlb();
                self.state.rip = next;
                Ok(GuestEvent::Continue)
            }
            status::LOAD_SYS_SEG => {
                self.load_sys_seg(f(16, 1) != 0, self.state.scratch[0] as u16, mem)?;
                self.state.rip = next;
                Ok(GuestEvent::Continue)
            }
            _ => {
                self.state.rip = next;
                Ok(GuestEvent::Continue)
            }
        }
    }

    fn string_io(
        &mut self,
        code: u64,
        _rip: u64,
        next: u64,
        platform: &Platform<'_>,
    ) -> Result<GuestEvent, Exc> {
        let f = |lo, n| status::field(code, lo, n);
        let bytes = f(16, 4);
        let out = f(20, 1) != 0;
        let rep = f(21, 1) != 0;
        let asz = 1u32 << f(24, 4);
        let sidx = (f(28, 3) as usize).min(seg::GS);
        let amask = crate::flags::mask(asz * 8);
        let port = self.state.regs[2] & 0xffff;
        let step = if self.state.eflags & rflags::DF != 0 {
            bytes.wrapping_neg()
        } else {
            bytes
        };
        let w = self.walker();
        // Bounded per call: the instruction is re-entered while rcx remains.
        for _ in 0..4096 {
            if rep && self.state.regs[1] & amask == 0 {
                self.state.rip = next;
                return Ok(Self::lifecycle_event(platform));
            }
            let mut buf = [0xffu8; 4];
            let b = &mut buf[..bytes as usize];
            if out {
                let off = self.state.regs[6] & amask;
                let lin = self.seg_linear(sidx, off);
                mmu::read_virt(&w, platform.memory, lin, b).map_err(|e| Exc::from_fault(e, lin))?;
                platform.pio.write(port, b);
                let n = self.state.regs[6].wrapping_add(step);
                write_reg(&mut self.state.regs[6], n, asz);
            } else {
                let off = self.state.regs[7] & amask;
                let lin = self.seg_linear(seg::ES, off);
                // Check the destination before the device sees the read.
                w.walk(platform.memory, lin, Access::Write)
                    .map_err(|e| Exc::from_fault(e, lin))?;
                platform.pio.read(port, b);
                mmu::write_virt(&w, platform.memory, lin, b)
                    .map_err(|e| Exc::from_fault(e, lin))?;
                let n = self.state.regs[7].wrapping_add(step);
                write_reg(&mut self.state.regs[7], n, asz);
            }
            if !rep {
                self.state.rip = next;
                return Ok(Self::lifecycle_event(platform));
            }
            let c = self.state.regs[1].wrapping_sub(1);
            write_reg(&mut self.state.regs[1], c, asz);
            if let ev @ GuestEvent::Exit(_) = Self::lifecycle_event(platform) {
                return Ok(ev);
            }
        }
        Ok(GuestEvent::Continue)
    }

    fn seg_linear(&self, sidx: usize, off: u64) -> u64 {
        let s = &self.state.segs[sidx];
        if self.state.code64() {
            if sidx == seg::FS || sidx == seg::GS {
                off.wrapping_add(s.base)
            } else {
                off
            }
        } else {
            off.wrapping_add(s.base) & 0xffff_ffff
        }
    }

    fn mov_to_cr(&mut self, n: u32, v: u64) -> Result<(), Exc> {
        let s = &mut *self.state;
        match n {
            0 => {
                let v = if s.code64() { v } else { v & 0xffff_ffff };
                if v >> 32 != 0 || (v & ctl::CR0_PG != 0 && v & ctl::CR0_PE == 0) {
                    return Err(Exc::gp(0));
                }
                let pg_on = v & ctl::CR0_PG != 0 && s.cr0 & ctl::CR0_PG == 0;
                let pg_off = v & ctl::CR0_PG == 0 && s.cr0 & ctl::CR0_PG != 0;
                if pg_on && s.efer & ctl::EFER_LME != 0 {
                    if s.cr4 & ctl::CR4_PAE == 0 {
                        return Err(Exc::gp(0));
                    }
                    s.efer |= ctl::EFER_LMA;
                }
                if pg_off {
                    if s.code64() {
                        return Err(Exc::gp(0));
                    }
                    s.efer &= !ctl::EFER_LMA;
                }
                s.cr0 = v | ctl::CR0_ET;
            }
            2 => s.cr2 = v,
            3 => s.cr3 = if s.code64() { v } else { v & 0xffff_ffff },
            4 => {
                if s.efer & ctl::EFER_LMA != 0 && v & ctl::CR4_PAE == 0 {
                    return Err(Exc::gp(0));
                }
                // Only bits for features moat models (or can ignore).
                let allowed = ctl::CR4_PSE
                    | ctl::CR4_PAE
                    | ctl::CR4_PGE
                    | ctl::CR4_OSFXSR
                    | ctl::CR4_OSXMMEXCPT
                    | (1 << 2)
                    | (1 << 3)
                    | (1 << 1)
                    | 1;
                if v & !allowed != 0 {
                    return Err(Exc::gp(0));
                }
                s.cr4 = v;
            }
            8 => s.cr8 = v & 0xf,
            _ => return Err(Exc::new(status::UD)),
        }
        s.header.tlb.flush();
        Ok(())
    }

    fn rdmsr(&self, idx: u32) -> Result<u64, Exc> {
        let s = &*self.state;
        Ok(match idx {
            0x10 => translate::system::tsc(s.clock.as_deref(), s.tsc_offset),
            0x1b => s.apic_base,
            0x1a0 => s.misc_enable,
            0x277 => s.pat,
            0xc000_0080 => s.efer,
            0xc000_0081 => s.star,
            0xc000_0082 => s.lstar,
            0xc000_0083 => s.cstar,
            0xc000_0084 => s.sfmask,
            0xc000_0100 => s.segs[seg::FS].base,
            0xc000_0101 => s.segs[seg::GS].base,
            0xc000_0102 => s.kernel_gs_base,
            0xc000_0103 => s.tsc_aux,
            _ => return Err(Exc::gp(0)),
        })
    }

    fn wrmsr(&mut self, idx: u32, v: u64) -> Result<(), Exc> {
        let canonical = ((v << 16) as i64 >> 16) as u64 == v;
        let s = &mut *self.state;
        match idx {
            0x10 => s.tsc_offset = v.wrapping_sub(translate::system::tsc(s.clock.as_deref(), 0)),
            0x1b => s.apic_base = v,
            0x1a0 => s.misc_enable = v,
            0x277 => s.pat = v,
            0xc000_0080 => {
                let allowed = ctl::EFER_SCE | ctl::EFER_LME | ctl::EFER_NXE;
                if v & !(allowed | ctl::EFER_LMA) != 0 {
                    return Err(Exc::gp(0));
                }
                if (v ^ s.efer) & ctl::EFER_LME != 0 && s.cr0 & ctl::CR0_PG != 0 {
                    return Err(Exc::gp(0));
                }
                s.efer = (v & allowed) | (s.efer & ctl::EFER_LMA);
                s.header.tlb.flush();
            }
            0xc000_0081 => s.star = v,
            0xc000_0082 | 0xc000_0083 | 0xc000_0100 | 0xc000_0101 | 0xc000_0102 if !canonical => {
                return Err(Exc::gp(0));
            }
            0xc000_0082 => s.lstar = v,
            0xc000_0083 => s.cstar = v,
            0xc000_0084 => s.sfmask = v & 0xffff_ffff,
            0xc000_0100 => s.segs[seg::FS].base = v,
            0xc000_0101 => s.segs[seg::GS].base = v,
            0xc000_0102 => s.kernel_gs_base = v,
            0xc000_0103 => s.tsc_aux = v & 0xffff_ffff,
            _ => return Err(Exc::gp(0)),
        }
        Ok(())
    }

    fn syscall(&mut self, next: u64) -> Result<(), Exc> {
        let s = &mut *self.state;
        if s.efer & ctl::EFER_SCE == 0 || !s.code64() {
            return Err(Exc::new(status::UD));
        }
        let flags = s.rflags();
        s.regs[1] = next;
        s.regs[11] = flags & !rflags::RF;
        let sel = (s.star >> 32) & 0xfffc;
        s.segs[seg::CS] = SegCache {
            selector: sel,
            base: 0,
            limit: 0xffff_ffff,
            attrs: attr::P | attr::S | attr::L | attr::G | 0xb,
        };
        s.segs[seg::SS] = SegCache {
            selector: sel + 8,
            base: 0,
            limit: 0xffff_ffff,
            attrs: attr::P | attr::S | attr::DB | attr::G | 0x3,
        };
        s.set_rflags(flags & !s.sfmask & !rflags::RF);
        s.rip = s.lstar;
        s.cpl = 0;
        Ok(())
    }

    fn sysret(&mut self, q: bool) -> Result<(), Exc> {
        let s = &mut *self.state;
        if s.efer & ctl::EFER_SCE == 0 || !s.code64() {
            return Err(Exc::new(status::UD));
        }
        let rcx = s.regs[1];
        if q && ((rcx << 16) as i64 >> 16) as u64 != rcx {
            return Err(Exc::gp(0));
        }
        let base = (s.star >> 48) & 0xfffc;
        let (cs_sel, l) = if q {
            (base + 16, attr::L)
        } else {
            (base, attr::DB)
        };
        s.segs[seg::CS] = SegCache {
            selector: cs_sel | 3,
            base: 0,
            limit: 0xffff_ffff,
            attrs: attr::P | attr::S | l | attr::G | 0xb | 3 << attr::DPL_SHIFT,
        };
        s.segs[seg::SS] = SegCache {
            selector: (base + 8) | 3,
            base: 0,
            limit: 0xffff_ffff,
            attrs: attr::P | attr::S | attr::DB | attr::G | 0x3 | 3 << attr::DPL_SHIFT,
        };
        let r11 = s.regs[11];
        s.set_rflags((r11 & (rflags::WRITABLE | rflags::RF)) | rflags::FIXED);
        s.rip = if q { rcx } else { rcx & 0xffff_ffff };
        s.cpl = 3;
        Ok(())
    }

    fn iret(&mut self, size: u32, mem: &GuestMemoryMmap) -> Result<(), Exc> {
        if self.real_mode() {
            return self.iret_real(size, mem);
        }
        let long = self.state.efer & ctl::EFER_LMA != 0;
        let sp = self.state.regs[4];
        let sz = size as u64;
        let nrip = self.read_stack(mem, sp, size)?;
        let sel = self.read_stack(mem, sp.wrapping_add(sz), size)? as u16;
        let fl = self.read_stack(mem, sp.wrapping_add(2 * sz), size)?;
        let rpl = (sel & 3) as u64;
        let outer = rpl > self.state.cpl;
        let pop_stack = outer || (long && self.state.code64());
        let (nsp, nss) = if pop_stack {
            (
                self.read_stack(mem, sp.wrapping_add(3 * sz), size)?,
                Some(self.read_stack(mem, sp.wrapping_add(4 * sz), size)? as u16),
            )
        } else {
            (sp.wrapping_add(3 * sz), None)
        };
        if rpl < self.state.cpl {
            return Err(Exc::gp((sel & 0xfffc) as u32));
        }
        let old_cpl = self.state.cpl;
        let old_segs = self.state.segs;
        self.state.cpl = rpl;
        let r = (|| {
            let cs = self.far_target(sel, mem)?;
            if let Some(ss) = nss {
                if ss & !3 == 0 && long && rpl != 3 {
                    self.state.segs[seg::SS] = SegCache {
                        selector: ss as u64,
                        attrs: attr::UNUSABLE | attr::DB,
                        ..SegCache::default()
                    };
                } else {
                    self.load_seg(seg::SS, ss, mem)?;
                }
            }
            Ok(cs)
        })();
        let cs = match r {
            Ok(c) => c,
            Err(e) => {
                self.state.cpl = old_cpl;
                self.state.segs = old_segs;
                return Err(e);
            }
        };
        // Flags: popped with the privileges of the old level.
        self.state.cpl = old_cpl;
        self.set_flags_from(fl, size);
        self.state.cpl = rpl;
        self.set_cs(cs);
        let code64 = self.state.code64();
        self.state.regs[4] = if code64 || pop_stack && size == 8 {
            nsp
        } else {
            nsp & 0xffff_ffff
        };
        self.state.rip = if code64 { nrip } else { nrip & 0xffff_ffff };
        Ok(())
    }

    /// iret in real-address mode (SDM Vol. 2A, IRET, "REAL-ADDRESS-MODE"):
    /// pops IP, CS and FLAGS at the operand size. A 32-bit iret keeps VM,
    /// VIF and VIP; a 16-bit one loads FLAGS[15:0] only.
    fn iret_real(&mut self, size: u32, mem: &GuestMemoryMmap) -> Result<(), Exc> {
        let sz = size as u64;
        let sp = self.state.regs[4];
        let nrip = self.read_stack(mem, sp, size)?;
        let sel = self.read_stack(mem, sp.wrapping_add(sz), size)? as u16;
        let fl = self.read_stack(mem, sp.wrapping_add(2 * sz), size)?;
        self.set_cs(Self::real_seg(self.state.segs[seg::CS], sel));
        self.set_flags_from(fl, size);
        self.write_sp(sp.wrapping_add(3 * sz));
        self.state.rip = nrip & crate::flags::mask(size * 8);
        Ok(())
    }

    fn load_sys_seg(&mut self, tr: bool, sel: u16, mem: &GuestMemoryMmap) -> Result<(), Exc> {
        if sel & !3 == 0 {
            if tr {
                return Err(Exc::gp(0));
            }
            self.state.ldtr = SegCache {
                selector: sel as u64,
                attrs: attr::UNUSABLE,
                ..SegCache::default()
            };
            return Ok(());
        }
        let lo = self.descriptor(mem, sel)?;
        let long = self.state.efer & ctl::EFER_LMA != 0;
        let mut c = SegCache::from_descriptor(sel, lo);
        if long {
            let hi = self.read_u64(
                mem,
                &self.sys_walker(),
                self.state.gdt_base.wrapping_add((sel & !7) as u64 + 8),
            )?;
            c.base |= (hi & 0xffff_ffff) << 32;
        }
        let ty = c.attrs & attr::TYPE;
        let ok = if tr {
            ty == 0x9 || ty == 0x1
        } else {
            ty == 0x2
        };
        if c.attrs & attr::S != 0 || !ok {
            return Err(Exc::gp((sel & 0xfffc) as u32));
        }
        if c.attrs & attr::P == 0 {
            return Err(Exc::err(status::NP, (sel & 0xfffc) as u32));
        }
        if tr {
            // Mark the TSS busy in the GDT and in the cache.
            c.attrs |= 0x2;
            let busy = lo | (0x2 << 40);
            let _ = mmu::write_virt(
                &self.sys_walker(),
                mem,
                self.state.gdt_base.wrapping_add((sel & !7) as u64),
                &busy.to_le_bytes(),
            );
            self.state.tr = c;
        } else {
            self.state.ldtr = c;
        }
        Ok(())
    }
}

impl X86Cpu {
    /// Whether the 64-bit instruction at `pc` addresses memory through SS (an
    /// explicit SS-based operand, rsp/rbp-based by default, or an implicit
    /// stack access such as push or call): a non-canonical address there is
    /// #SS(0), not #GP(0). Translated code reports both as the walker's
    /// non-canonical fault, so the instruction is decoded again here, on this
    /// rare path, rather than making every memory access carry its segment.
    fn accesses_stack_segment(&self, pc: u64, memory: &GuestMemoryMmap) -> bool {
        if !self.state.code64() {
            return false;
        }
        let walker = self.walker();
        let mut bytes = [0u8; 15];
        let mut len = 0;
        for (i, byte) in bytes.iter_mut().enumerate() {
            let at = pc.wrapping_add(i as u64);
            let Ok(t) = walker.walk(memory, at, Access::Exec) else {
                break;
            };
            let Ok(b) = vm_memory::Bytes::read_obj::<u8>(memory, vm_memory::GuestAddress(t.paddr))
            else {
                break;
            };
            *byte = b;
            len = i + 1;
        }
        let mut decoder =
            iced_x86::Decoder::with_ip(64, &bytes[..len], pc, iced_x86::DecoderOptions::NONE);
        let insn = decoder.decode();
        if insn.is_invalid() {
            return false;
        }
        let explicit_memory =
            (0..insn.op_count()).any(|i| insn.op_kind(i) == iced_x86::OpKind::Memory);
        if explicit_memory {
            insn.memory_segment() == iced_x86::Register::SS
        } else {
            insn.stack_pointer_increment() != 0
        }
    }
}

/// Non-canonical stack accesses raise #SS rather than #GP.
fn stackify(f: Fault) -> Fault {
    if f == Fault::General { Fault::Stack } else { f }
}

fn pc_of(cpu: &X86Cpu, rip: u64, fallback: u64) -> u64 {
    let _ = fallback;
    if cpu.state.code64() {
        rip
    } else {
        cpu.state.segs[seg::CS].base.wrapping_add(rip) & 0xffff_ffff
    }
}

/// Writes `v` into a register as an operation of `bytes` would.
fn write_reg(r: &mut u64, v: u64, bytes: u32) {
    *r = match bytes {
        8 => v,
        4 => v & 0xffff_ffff,
        _ => {
            let m = crate::flags::mask(bytes * 8);
            (*r & !m) | (v & m)
        }
    };
}

impl GuestCpu for X86Cpu {
    type State = X86State;
    type Walker = X86Walker;

    fn disassemble(&self, pc: u64, flags: u64, bytes: &[u8]) -> Vec<String> {
        X86Cpu::disassemble(self, pc, flags, bytes)
    }

    fn state(&mut self) -> &mut X86State {
        &mut self.state
    }

    fn pc(&self) -> u64 {
        self.state.pc()
    }

    fn set_pc(&mut self, pc: u64) {
        self.state.rip = self.rip_of(pc);
    }

    fn tb_flags(&self) -> u64 {
        let s = &*self.state;
        let mut f = (s.cpl & 3) << tbflags::CPL_SHIFT;
        if s.eflags & rflags::TF != 0 {
            f |= tbflags::TF;
        }
        if s.code64() {
            f |= tbflags::CODE64;
        } else {
            if s.segs[seg::CS].attrs & attr::DB != 0 {
                f |= tbflags::CODE32;
            }
            f |= (s.segs[seg::CS].base & 0xffff_ffff) << tbflags::CS_BASE_SHIFT;
            if [seg::ES, seg::CS, seg::SS, seg::DS]
                .iter()
                .any(|&i| s.segs[i].base != 0)
            {
                f |= tbflags::ADDSEG;
            }
        }
        if s.cr0 & ctl::CR0_PE != 0 {
            f |= tbflags::PE;
        }
        if s.segs[seg::SS].attrs & attr::DB != 0 {
            f |= tbflags::SS32;
        }
        if s.efer & ctl::EFER_LMA != 0 {
            f |= tbflags::LMA;
        }
        if s.cr4 & ctl::CR4_OSFXSR == 0 || s.cr0 & ctl::CR0_EM != 0 {
            f |= tbflags::NO_SSE;
        }
        if s.cr0 & ctl::CR0_EM != 0 {
            f |= tbflags::EM;
        }
        if s.cr0 & ctl::CR0_TS != 0 {
            f |= tbflags::TS;
        }
        f
    }

    fn fetch_mmu_idx(&self) -> usize {
        mmu::mmu_idx_for_cpl(self.state.cpl)
    }

    fn walker(&self) -> X86Walker {
        let s = &*self.state;
        X86Walker {
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer,
            cpl: s.cpl,
        }
    }

    fn translate(
        &mut self,
        pc: u64,
        flags: u64,
        code: &mut dyn CodeReader,
        block: &mut Block,
        max_insns: usize,
    ) -> Result<(), FetchFault> {
        translate::translate_block(pc, flags, code, block, max_insns)
    }

    fn handle_status(&mut self, code: u64, pc: u64, platform: &Platform<'_>) -> GuestEvent {
        let rip = self.rip_of(pc);
        let next = {
            let n = rip.wrapping_add(status::insn_len(code));
            if self.state.code64() {
                n
            } else {
                n & 0xffff_ffff
            }
        };
        self.state.rip = rip;
        let was_enabled = self.interrupts_enabled();
        match self.finish(code, rip, next, platform) {
            Ok(GuestEvent::Continue) => {
                // popf, iret and the like may have just unmasked an interrupt
                // that is already waiting (sti has its shadow, above).
                if !was_enabled
                    && status::kind(code) != status::STI
                    && self.interrupts_enabled()
                    && platform.interrupts.interrupt_pending(platform.cpu)
                {
                    self.state.header().request_exit();
                }
                GuestEvent::Continue
            }
            Ok(ev) => ev,
            Err(e) => {
                self.state.rip = rip;
                self.exception(e, rip, false, platform)
            }
        }
    }

    fn memory_fault(
        &mut self,
        pc: u64,
        vaddr: u64,
        _access: Access,
        fault: MemFault,
        platform: &Platform<'_>,
    ) -> GuestEvent {
        let rip = self.rip_of(pc);
        self.state.rip = rip;
        let mut kind = Fault::from_mem(fault);
        if kind == Fault::General && self.accesses_stack_segment(pc, platform.memory) {
            kind = stackify(kind);
        }
        let e = Exc::from_fault(kind, vaddr);
        self.exception(e, rip, false, platform)
    }

    fn helper_exit(&mut self, code: u32, pc: u64, platform: &Platform<'_>) -> GuestEvent {
        self.state.header().helper_exit = 0;
        let rip = self.rip_of(pc);
        self.state.rip = rip;
        let vector = code.saturating_sub(1).min(255) as u8;
        self.exception(Exc::new(vector), rip, false, platform)
    }

    fn poll_interrupts(&mut self, platform: &Platform<'_>) -> GuestEvent {
        if self.take_startup(platform) {
            return GuestEvent::Continue;
        }
        if self.waiting_for_sipi {
            return GuestEvent::Wait;
        }
        if platform.interrupts.take_nmi(platform.cpu) {
            // NMI blocking until the handler's iret is not modelled.
            self.halted = false;
            let rip = self.state.rip;
            return self.exception(Exc::new(NMI_VECTOR), rip, false, platform);
        }
        if self.interrupts_enabled()
            && platform.interrupts.interrupt_pending(platform.cpu)
            && let Some(vector) = platform.interrupts.acknowledge(platform.cpu)
        {
            self.halted = false;
            let rip = self.state.rip;
            return self.exception(Exc::new(vector), rip, false, platform);
        }
        if self.halted {
            // Kicked for something that is not ours to take yet.
            return GuestEvent::Wait;
        }
        GuestEvent::Continue
    }

    fn has_work(&mut self, platform: &Platform<'_>) -> GuestEvent {
        let runs = self.take_startup(platform)
            || (!self.waiting_for_sipi
                && (!self.halted
                    || platform.interrupts.wake_pending(platform.cpu)
                    || (self.interrupts_enabled()
                        && platform.interrupts.interrupt_pending(platform.cpu))));
        if runs {
            platform.lifecycle.set_parked(platform.cpu, false);
            return GuestEvent::Continue;
        }
        self.park_if_stuck(platform)
    }

    fn powered_off(&self) -> bool {
        self.waiting_for_sipi
    }

    fn cpu_state(&self) -> MachineCpuState {
        MachineCpuState::X86_64(Box::new(self.state.to_machine()))
    }

    fn set_cpu_state(&mut self, state: &MachineCpuState) -> Result<(), machine::AccelError> {
        match state {
            MachineCpuState::X86_64(s) => {
                self.state.load_machine(s);
                Ok(())
            }
            other => Err(machine::AccelError::WrongArch {
                expected: machine::Arch::X86_64,
                found: other.arch(),
            }),
        }
    }
}
