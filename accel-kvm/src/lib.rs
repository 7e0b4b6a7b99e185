//! The KVM accelerator: guest code runs on the host CPU through `/dev/kvm`.
//!
//! This is moat's virtualization use case, the only one where it can promise
//! isolation. The crate maps guest RAM into KVM memory slots, sets up vCPUs from
//! the board's [`BootState`](machine::BootState) (CPUID, MSRs, segment and control
//! registers), and runs them, dispatching port and MMIO exits to the board's buses
//! ([`exit`] holds that dispatch as a pure function).

mod error;
mod exit;
mod ioctls;
mod x86_64;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::AtomicU8;

use devices::{Bus, VmLifecycle};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use machine::{
    AccelError, AccelKind, Accelerator, Arch, BootState, CpuState, Isolation, Power, Vcpu,
    VcpuExit, Vm, VmSpec,
};
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

pub use error::{KvmFailure, KvmUnavailable};
pub use exit::{ExitAction, dispatch_exit};
pub use ioctls::ALLOWED_IOCTLS;

/// The path moat opens; a constant so error messages and the sandbox agree.
pub const KVM_DEVICE: &str = "/dev/kvm";

/// An open `/dev/kvm`.
pub struct KvmAccelerator {
    kvm: Kvm,
}

impl KvmAccelerator {
    /// Opens `/dev/kvm`, explaining what to do when that is impossible.
    pub fn open() -> Result<Self, AccelError> {
        Self::open_path(Path::new(KVM_DEVICE))
    }

    /// Opens the KVM device at `path` (tests point it elsewhere), explaining
    /// what to do when that is impossible.
    pub fn open_path(path: &Path) -> Result<Self, AccelError> {
        let kvm = open_checked(path).map_err(|reason| AccelError::Unavailable(Box::new(reason)))?;
        // Before the sandbox, which forbids sigaction.
        install_kick_handler();
        Ok(KvmAccelerator { kvm })
    }
}

/// Whether the KVM device at `path` would serve moat: it opens for reading
/// and writing and speaks the KVM API version moat needs. Opens and closes it;
/// creates no VM.
pub fn probe(path: &Path) -> Result<(), KvmUnavailable> {
    open_checked(path).map(drop)
}

fn open_checked(path: &Path) -> Result<Kvm, KvmUnavailable> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| KvmUnavailable::Open {
        path: path.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let kvm =
        Kvm::new_with_path(&c_path).map_err(|error| KvmUnavailable::from_open(path, &error))?;
    let version = kvm.get_api_version();
    if version != kvm_bindings::KVM_API_VERSION as i32 {
        return Err(KvmUnavailable::from_version(path, version));
    }
    Ok(kvm)
}

impl Accelerator for KvmAccelerator {
    fn kind(&self) -> AccelKind {
        AccelKind::Kvm
    }

    fn isolation(&self) -> Isolation {
        Isolation::Hardware
    }

    fn supports(&self, arch: Arch) -> bool {
        Arch::host() == Some(arch) && arch == Arch::X86_64
    }

    fn create_vm(&self, spec: VmSpec) -> Result<Box<dyn Vm>, AccelError> {
        if !self.supports(spec.arch) {
            return Err(AccelError::UnsupportedArch {
                accel: AccelKind::Kvm,
                arch: spec.arch,
            });
        }
        let vm = self
            .kvm
            .create_vm()
            .map_err(|error| AccelError::host("creating the KVM VM", error))?;
        for (slot, region) in spec.memory.iter().enumerate() {
            let mapping = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
            };
            // SAFETY: the region's host mapping lives in `spec.memory`, which the
            // returned VM keeps alive for as long as the VM (and so the slot) exists.
            unsafe { vm.set_user_memory_region(mapping) }
                .map_err(|error| AccelError::host("mapping guest RAM into KVM", error))?;
        }
        // After the memory slots: with the irqchip already there, registering
        // a slot costs milliseconds more on some hosts (nested PVM here).
        x86_64::setup_vm(&vm)?;
        let supported_cpuid = self
            .kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(|error| AccelError::host("reading KVM's supported CPUID", error))?;
        let vm = Arc::new(vm);
        // The board's lines now go to the in-kernel irqchip, replacing its
        // own controller models.
        spec.irq.connect(Arc::new(KvmIrqLines(vm.clone())));
        Ok(Box::new(KvmVm {
            vm,
            _memory: spec.memory,
            pio_bus: spec.pio_bus,
            mmio_bus: spec.mmio_bus,
            lifecycle: spec.lifecycle,
            cpus: spec.cpus,
            supported_cpuid,
        }))
    }
}

/// Device interrupt lines into the in-kernel irqchip (KVM_IRQ_LINE), which
/// routes line n to the 8259 input n and the I/O APIC pin n, as moat's
/// own models do.
struct KvmIrqLines(Arc<VmFd>);

impl devices::IrqSink for KvmIrqLines {
    fn set_level(&self, line: u32, high: bool) {
        if let Err(error) = self.0.set_irq_line(line, high) {
            log::debug!("KVM_IRQ_LINE {line} -> {high}: {error}");
        }
    }
}

struct KvmVm {
    vm: Arc<VmFd>,
    /// Keeps the host mappings behind the memory slots alive.
    _memory: vm_memory::GuestMemoryMmap,
    pio_bus: Arc<Bus>,
    mmio_bus: Arc<Bus>,
    lifecycle: Arc<VmLifecycle>,
    cpus: u32,
    supported_cpuid: kvm_bindings::CpuId,
}

impl Vm for KvmVm {
    fn create_vcpu(&self, index: u32, boot: &BootState) -> Result<Box<dyn Vcpu>, AccelError> {
        let fd = self
            .vm
            .create_vcpu(u64::from(index))
            .map_err(|error| AccelError::host("creating a KVM vCPU", error))?;
        x86_64::setup_vcpu(&fd, index, &self.supported_cpuid)?;
        let mut vcpu = KvmVcpu {
            fd,
            index,
            cpus: self.cpus,
            pio_bus: self.pio_bus.clone(),
            mmio_bus: self.mmio_bus.clone(),
            lifecycle: self.lifecycle.clone(),
        };
        // A secondary vCPU keeps KVM's reset state: with the in-kernel APIC
        // it waits for INIT/SIPI on its own.
        if boot.power == Power::On {
            vcpu.set_cpu_state(&boot.cpu)?;
        }
        let immediate_exit = std::ptr::addr_of_mut!(vcpu.fd.get_kvm_run().immediate_exit);
        // SAFETY: the kvm_run page lives as long as `vcpu.fd`; `Drop` for
        // KvmVcpu unregisters the byte before the fd is closed. AtomicU8 has
        // the layout of u8.
        unsafe {
            self.lifecycle
                .vcpu(index)
                .set_immediate_exit(immediate_exit.cast::<AtomicU8>())
        };
        Ok(Box::new(vcpu))
    }
}

struct KvmVcpu {
    fd: VcpuFd,
    index: u32,
    cpus: u32,
    pio_bus: Arc<Bus>,
    mmio_bus: Arc<Bus>,
    lifecycle: Arc<VmLifecycle>,
}

impl KvmVcpu {
    fn failed(&self, reason: KvmFailure) -> AccelError {
        AccelError::VcpuFailed {
            reason: Box::new(reason),
            state: self.cpu_state().ok().map(Box::new),
        }
    }

    fn rip(&self) -> u64 {
        self.fd.get_regs().map_or(0, |regs| regs.rip)
    }

    /// Whether the vCPU sits in `hlt` with nothing that could ever wake it:
    /// interrupts masked on the only vCPU (no other CPU to send INIT or NMI,
    /// and the board has no NMI source). KVM keeps such a vCPU inside
    /// KVM_RUN; moat's run loop kicks it now and then to ask.
    fn halted_for_good(&self) -> bool {
        if self.cpus > 1 {
            return false;
        }
        let halted = self
            .fd
            .get_mp_state()
            .is_ok_and(|state| state.mp_state == kvm_bindings::KVM_MP_STATE_HALTED);
        halted
            && self
                .fd
                .get_regs()
                .is_ok_and(|regs| regs.rflags & RFLAGS_IF == 0)
    }
}

impl Drop for KvmVcpu {
    fn drop(&mut self) {
        let kick = self.lifecycle.vcpu(self.index);
        kick.set_thread(0, 0);
        // SAFETY: unregistering the kvm_run byte before the fd closes.
        unsafe { kick.set_immediate_exit(std::ptr::null()) };
    }
}

const RFLAGS_IF: u64 = 1 << 9;

/// The signal that kicks a vCPU thread out of KVM_RUN (see
/// [`devices::VcpuKick`]). The sandbox allows moat to send it to itself.
pub fn kick_signal() -> i32 {
    libc::SIGRTMIN()
}

extern "C" fn on_kick(_signal: libc::c_int) {
    // Nothing to do: arriving is the point (KVM_RUN returns EINTR).
}

/// Installs the kick signal's handler once, without SA_RESTART.
fn install_kick_handler() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: a zeroed sigaction is valid plain data; the handler touches
        // nothing.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_kick as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            libc::sigaction(kick_signal(), &action, std::ptr::null_mut());
        }
    });
}

impl Vcpu for KvmVcpu {
    fn run(&mut self) -> Result<VcpuExit, AccelError> {
        self.lifecycle
            .vcpu(self.index)
            .set_thread(devices::kick::current_tid(), kick_signal());
        loop {
            // Checked before entering the guest, so a request made while the vCPU
            // was out (Ctrl-C, a device on another thread) is not lost. A request
            // that lands between this check and KVM_RUN interrupts the ioctl with
            // EINTR when it comes with a signal, as Ctrl-C does.
            if let Some(event) = self.lifecycle.pending() {
                return Ok(exit::lifecycle_exit(event));
            }
            let run_area: *const kvm_bindings::kvm_run = self.fd.get_kvm_run();
            let action = match self.fd.run() {
                Ok(kvm_exit) => {
                    let io_size = if matches!(
                        kvm_exit,
                        kvm_ioctls::VcpuExit::IoIn(..) | kvm_ioctls::VcpuExit::IoOut(..)
                    ) {
                        // SAFETY: `run_area` points at the vCPU's mapped kvm_run page,
                        // which lives as long as `self.fd`; for an I/O exit KVM filled
                        // the `io` member of the union. The field is read by value and
                        // does not overlap the data slice `kvm_exit` borrows.
                        usize::from(unsafe {
                            std::ptr::addr_of!((*run_area).__bindgen_anon_1.io.size).read_volatile()
                        })
                    } else {
                        0
                    };
                    dispatch_exit(kvm_exit, io_size, &self.pio_bus, &self.mmio_bus)
                }
                Err(error) if error.errno() == libc::EINTR || error.errno() == libc::EAGAIN => {
                    // A kick: a lifecycle request (checked at the loop's top)
                    // or the run loop asking whether the vCPU halted for good.
                    self.fd.set_kvm_immediate_exit(0);
                    if self.halted_for_good() {
                        return Ok(VcpuExit::Halted { pc: self.rip() });
                    }
                    ExitAction::Continue
                }
                Err(error) => {
                    return Err(self.failed(KvmFailure::Run(error)));
                }
            };
            match action {
                ExitAction::Continue => {}
                ExitAction::Halt => {
                    let rip = self.rip();
                    return Ok(VcpuExit::Halted { pc: rip });
                }
                ExitAction::TripleFault => {
                    return Ok(VcpuExit::Crashed(machine::Crash {
                        cause: "triple fault",
                        pc: self.rip(),
                    }));
                }
                ExitAction::Exit(exit) => return Ok(exit),
                ExitAction::InternalError => {
                    let internal = {
                        // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, for which
                        // KVM fills the `internal` member of the union.
                        unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal }
                    };
                    return Err(self.failed(KvmFailure::internal(internal.suberror)));
                }
                ExitAction::Fail(reason) => return Err(self.failed(reason)),
            }
        }
    }

    fn cpu_state(&self) -> Result<CpuState, AccelError> {
        x86_64::get_cpu_state(&self.fd)
    }

    fn set_cpu_state(&mut self, state: &CpuState) -> Result<(), AccelError> {
        x86_64::set_cpu_state(&self.fd, state)
    }
}
