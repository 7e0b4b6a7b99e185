//! seccomp-BPF allow-lists, one per thread role.
//!
//! Once the guest runs, moat needs very few system calls: the vCPU thread makes
//! KVM ioctls, writes serial output, and allocates and frees memory (a guest reset
//! rebuilds the machine); the stdin thread reads stdin and hands bytes to the
//! UART. Each thread installs the list for its role before it touches anything
//! the guest controls, and any call not on it kills the whole process
//! (`SECCOMP_RET_KILL_PROCESS`): a thread dying alone could leave a confused VMM
//! running. Every rule below says why it is there; arguments are checked where a
//! call could otherwise do more than moat needs (ioctl by request number, write
//! by descriptor, no executable memory).
//!
//! The lists were found by reading the code paths and checked with `strace -f`
//! over the whole guest test suite.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// What a thread does, and so which calls it may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs guest code (KVM_RUN, or the JIT) and the devices it exits to.
    Vcpu,
    /// Reads the host's stdin for the guest's serial port.
    Stdin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Vcpu => "vcpu",
            Role::Stdin => "stdin",
        }
    }
}

/// What the filters are built for.
#[derive(Debug, Clone)]
pub struct Context {
    /// Descriptors the vCPU thread writes guest output to (stdout, stderr, a
    /// serial log).
    pub write_fds: Vec<i32>,
    /// The accelerator generates code (TCG): executable mappings are allowed.
    pub jit: bool,
    /// stdin is a terminal moat put in raw mode: any thread may restore its
    /// mode (an exit, a signal, a panic), and the stdin thread prints the
    /// Ctrl-A help and messages on stderr.
    pub terminal: bool,
    /// Disk images open for virtio-blk: the vCPU threads read, write and
    /// flush them (`pread64`, `pwrite64`, `fsync`) on these descriptors only.
    pub disk_fds: Vec<i32>,
}

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

/// A rule that holds when argument `arg` equals `value`.
fn arg_is(arg: u8, value: u64) -> Result<SeccompRule, String> {
    SeccompRule::new(vec![condition(arg, SeccompCmpOp::Eq, value)?]).map_err(|e| e.to_string())
}

/// One rule per value: argument `arg` is one of `values`.
fn arg_in(arg: u8, values: &[u64]) -> Result<Vec<SeccompRule>, String> {
    values.iter().map(|&value| arg_is(arg, value)).collect()
}

/// Argument `arg` has none of the bits of `mask`.
fn arg_lacks(arg: u8, mask: u64) -> Result<Vec<SeccompRule>, String> {
    Ok(vec![
        SeccompRule::new(vec![condition(arg, SeccompCmpOp::MaskedEq(mask), 0)?])
            .map_err(|e| e.to_string())?,
    ])
}

/// The allow-list for `role`: syscall number to the rules its arguments must
/// match (an empty list allows any arguments).
fn rules(role: Role, context: &Context) -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let any = Vec::new;
    let no_exec = |arg| {
        if context.jit {
            // The JIT maps its code buffer executable.
            Ok(Vec::new())
        } else {
            arg_lacks(arg, libc::PROT_EXEC as u64)
        }
    };

    // Both roles: memory, locks, signals, time and leaving.
    // The allocator maps and unmaps memory; with no JIT, never executable, so a
    // compromised moat cannot create new code.
    rules.insert(libc::SYS_mmap, no_exec(2)?);
    rules.insert(libc::SYS_mprotect, no_exec(2)?);
    rules.insert(libc::SYS_munmap, any());
    // The allocator grows the main heap and moves large reallocations.
    rules.insert(libc::SYS_brk, any());
    rules.insert(libc::SYS_mremap, any());
    // The allocator and thread exit return memory (DONTNEED, FREE); guest RAM is
    // kept out of core dumps (DONTDUMP) when a reset rebuilds it.
    rules.insert(
        libc::SYS_madvise,
        arg_in(
            2,
            &[
                libc::MADV_DONTNEED as u64,
                libc::MADV_FREE as u64,
                libc::MADV_DONTDUMP as u64,
            ],
        )?,
    );
    // Mutexes (the UART is shared by both threads), channels, Arc drops.
    rules.insert(libc::SYS_futex, any());
    rules.insert(libc::SYS_sched_yield, any());
    // glibc sizes a thread's malloc arena from the CPUs it may run on.
    rules.insert(libc::SYS_sched_getaffinity, any());
    // Returning from a signal handler (Ctrl-C interrupting KVM_RUN).
    rules.insert(libc::SYS_rt_sigreturn, any());
    // glibc and Rust mask signals and tear down the alternate signal stack when a
    // thread ends.
    rules.insert(libc::SYS_rt_sigprocmask, any());
    rules.insert(libc::SYS_sigaltstack, any());
    // Clocks, where the vDSO falls back to the kernel (an unstable nested clock).
    rules.insert(libc::SYS_clock_gettime, any());
    // Rust's thread identity and panic machinery.
    rules.insert(libc::SYS_gettid, any());
    rules.insert(libc::SYS_getpid, any());
    // abort() after a panic raises SIGABRT at its own thread, and a vCPU kick
    // signals another vCPU thread out of KVM_RUN: both only inside moat.
    let pid = u64::from(std::process::id());
    let tgkill = [libc::SIGABRT, accel_kvm::kick_signal()]
        .into_iter()
        .map(|signal| {
            SeccompRule::new(vec![
                condition(0, SeccompCmpOp::Eq, pid)?,
                condition(2, SeccompCmpOp::Eq, signal as u64)?,
            ])
            .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    rules.insert(libc::SYS_tgkill, tgkill);
    // A thread ends; the process ends.
    rules.insert(libc::SYS_exit, any());
    rules.insert(libc::SYS_exit_group, any());
    // Restoring the terminal's mode (TCSETS on stdin only) on whichever thread
    // ends the run, takes a signal or panics.
    let restore_terminal = if context.terminal {
        vec![
            SeccompRule::new(vec![
                condition(0, SeccompCmpOp::Eq, 0)?,
                condition(1, SeccompCmpOp::Eq, libc::TCSETS)?,
            ])
            .map_err(|e| e.to_string())?,
        ]
    } else {
        Vec::new()
    };

    match role {
        Role::Vcpu => {
            if context.jit {
                // The JIT's code buffer: one memfd, sized, then mapped twice
                // (read-write and read-execute), made again with each VM. No
                // ioctl at all.
                rules.insert(libc::SYS_memfd_create, any());
                rules.insert(libc::SYS_ftruncate, any());
            } else {
                // KVM, by request number only: the fds are made after the filter.
                let requests: Vec<u64> = accel_kvm::ALLOWED_IOCTLS
                    .iter()
                    .map(|(request, _)| *request)
                    .collect();
                rules.insert(libc::SYS_ioctl, arg_in(1, &requests)?);
            }
            if !restore_terminal.is_empty() {
                rules
                    .entry(libc::SYS_ioctl)
                    .or_default()
                    .extend(restore_terminal.iter().cloned());
            }
            // Guest serial output and moat's own messages, to the descriptors
            // open for them and no other.
            let fds: Vec<u64> = context.write_fds.iter().map(|&fd| fd as u64).collect();
            rules.insert(libc::SYS_write, arg_in(0, &fds)?);
            // Dropping a VM or vCPU at a reset or at the end closes its fds.
            rules.insert(libc::SYS_close, any());
            // Debug builds check a descriptor is open before closing it.
            rules.insert(libc::SYS_fcntl, arg_in(1, &[libc::F_GETFD as u64])?);
            // virtio-rng fills the guest's buffers from the kernel's pool on
            // the vCPU thread that notified it; flags are harmless.
            rules.insert(libc::SYS_getrandom, any());
            // virtio-blk requests run on the notifying vCPU thread: reads,
            // writes and flushes of the disk images, and no other descriptor.
            if !context.disk_fds.is_empty() {
                let disks: Vec<u64> = context.disk_fds.iter().map(|&fd| fd as u64).collect();
                rules.insert(libc::SYS_pread64, arg_in(0, &disks)?);
                rules.insert(libc::SYS_pwrite64, arg_in(0, &disks)?);
                rules.insert(libc::SYS_fsync, arg_in(0, &disks)?);
            }
        }
        Role::Stdin => {
            // The host's keyboard (or pipe), and only that.
            rules.insert(libc::SYS_read, arg_in(0, &[0])?);
            if !context.jit {
                // Input raises the UART's interrupt line, which under KVM is
                // an ioctl on the VM.
                let irq_line = accel_kvm::ALLOWED_IOCTLS
                    .iter()
                    .filter(|(_, name)| *name == "KVM_IRQ_LINE")
                    .map(|(request, _)| *request)
                    .collect::<Vec<_>>();
                rules.insert(libc::SYS_ioctl, arg_in(1, &irq_line)?);
            }
            if context.terminal {
                rules
                    .entry(libc::SYS_ioctl)
                    .or_default()
                    .extend(restore_terminal);
                // The Ctrl-A help and "terminated" go to stderr.
                rules.insert(libc::SYS_write, arg_in(0, &[2])?);
            }
            // Waiting for the guest to drain its receive FIFO.
            rules.insert(libc::SYS_clock_nanosleep, any());
            rules.insert(libc::SYS_nanosleep, any());
        }
    }
    Ok(rules)
}

/// Compiles the allow-list for `role` for this host's architecture.
pub fn compile(role: Role, context: &Context) -> Result<BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| format!("no seccomp filters for {}", std::env::consts::ARCH))?;
    let filter = SeccompFilter::new(
        rules(role, context)?,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|error| format!("building the {} filter: {error}", role.name()))?;
    filter
        .try_into()
        .map_err(|error: seccompiler::BackendError| {
            format!("compiling the {} filter: {error}", role.name())
        })
}

/// Installs `program` on the calling thread (and threads it starts later). Also
/// sets no_new_privs, which seccomp requires of an unprivileged process.
pub fn install(program: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter(program).map_err(|error| error.to_string())
}

/// Whether the kernel can filter system calls and kill the process on a
/// violation (Linux 4.14 and later with CONFIG_SECCOMP_FILTER).
pub fn probe() -> machine::policy::Availability {
    let action: u32 = 0x8000_0000; // SECCOMP_RET_KILL_PROCESS
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 that we own.
    let result = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            2u32, // SECCOMP_GET_ACTION_AVAIL
            0u32,
            &action as *const u32,
        )
    };
    if result == 0 {
        machine::policy::Availability::Available
    } else {
        machine::policy::Availability::Unavailable(format!(
            "the kernel cannot kill a process on a seccomp violation: {}",
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_compiles() {
        let context = Context {
            write_fds: vec![1, 2, 7],
            jit: false,
            terminal: false,
            disk_fds: vec![9],
        };
        for role in [Role::Vcpu, Role::Stdin] {
            let program = compile(role, &context).unwrap();
            assert!(!program.is_empty());
        }
        let jit = Context {
            jit: true,
            ..context.clone()
        };
        let tcg = rules(Role::Vcpu, &jit).unwrap();
        assert!(!tcg.contains_key(&libc::SYS_ioctl));
        assert!(tcg[&libc::SYS_mmap].is_empty());
        let stdin = rules(Role::Stdin, &context).unwrap();
        // Under KVM the stdin thread raises the UART's line: one ioctl only.
        assert_eq!(stdin[&libc::SYS_ioctl].len(), 1);
        let stdin_tcg = rules(Role::Stdin, &jit).unwrap();
        assert!(!stdin_tcg.contains_key(&libc::SYS_ioctl));
        assert!(!stdin.contains_key(&libc::SYS_write));
        assert!(!stdin.contains_key(&libc::SYS_openat));
        let vcpu = rules(Role::Vcpu, &context).unwrap();
        assert!(!vcpu.contains_key(&libc::SYS_read));
        assert!(!vcpu.contains_key(&libc::SYS_socket));
        assert!(!vcpu.contains_key(&libc::SYS_execve));
        assert!(!vcpu.contains_key(&libc::SYS_clone));
        assert!(!vcpu.contains_key(&libc::SYS_memfd_create));
        assert!(vcpu[&libc::SYS_getrandom].is_empty());
        assert_eq!(vcpu[&libc::SYS_pread64].len(), 1);
        assert_eq!(vcpu[&libc::SYS_fsync].len(), 1);
        assert!(!stdin.contains_key(&libc::SYS_pwrite64));
        let no_disk = Context {
            disk_fds: Vec::new(),
            ..context.clone()
        };
        assert!(
            !rules(Role::Vcpu, &no_disk)
                .unwrap()
                .contains_key(&libc::SYS_pread64)
        );
    }

    #[test]
    fn a_raw_terminal_adds_its_restore_and_the_escape_messages() {
        let context = Context {
            write_fds: vec![1, 2],
            jit: true,
            terminal: true,
            disk_fds: Vec::new(),
        };
        for role in [Role::Vcpu, Role::Stdin] {
            assert!(!compile(role, &context).unwrap().is_empty());
            // TCG threads make no ioctl but the terminal's restore.
            assert_eq!(rules(role, &context).unwrap()[&libc::SYS_ioctl].len(), 1);
        }
        let stdin = rules(Role::Stdin, &context).unwrap();
        assert_eq!(stdin[&libc::SYS_write].len(), 1);
    }
}
