//! The run loop: runs a board's vCPUs on an accelerator until the guest is
//! done, rebuilding the machine when the guest resets it.
//!
//! Each vCPU runs on a host thread of its own from a [`VcpuThreads`] pool. The
//! pool's threads are started once, before the sandbox forbids starting
//! threads, and each installs its own seccomp filter first; a reset hands the
//! same threads the new machine's vCPUs. The calling thread builds VMs and
//! vCPUs and waits: the first vCPU to stop decides how the run ends, and the
//! others are stopped through the lifecycle (which kicks every vCPU).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::accel::{AccelError, AccelKind, Accelerator, Crash, Vcpu, VcpuExit};
use crate::arch::Power;
use crate::boards::Board;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest (or the host, through Ctrl-C) asked to end with this status.
    Exited(i32),
    /// The vCPU halted with nothing left to wake it.
    Halted { pc: u64 },
    /// The guest crashed.
    Crashed(Crash),
    /// The guest asked for a reset and resets are not wanted.
    Reset,
}

type Job = Box<dyn FnOnce() + Send>;

/// How often a KVM machine's vCPUs are asked whether they halted for good.
const HALT_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// One host thread per vCPU index, started once and reused across resets.
pub struct VcpuThreads {
    workers: Vec<Mutex<mpsc::Sender<Job>>>,
}

/// What a vCPU thread runs before taking work: the sandbox's per-thread set-up
/// (its seccomp filter). An error ends that thread before it runs guest code.
pub type ThreadSetup = Arc<dyn Fn(u32) -> Result<(), String> + Send + Sync>;

impl VcpuThreads {
    /// Starts `count` threads named `vcpu0`, `vcpu1`, ...; each runs `setup`
    /// first. Returns once every thread has, with the first error if one failed.
    pub fn start(count: u32, setup: ThreadSetup) -> Result<VcpuThreads, String> {
        let mut workers = Vec::new();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        for index in 0..count {
            let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
            let setup = setup.clone();
            let ready = ready_tx.clone();
            std::thread::Builder::new()
                .name(format!("vcpu{index}"))
                .spawn(move || {
                    let prepared = setup(index);
                    let failed = prepared.is_err();
                    let _ = ready.send(prepared);
                    drop(ready);
                    if failed {
                        return;
                    }
                    devices::set_current_vcpu(index);
                    while let Ok(job) = jobs_rx.recv() {
                        job();
                    }
                })
                .map_err(|error| format!("cannot start the thread of vCPU {index}: {error}"))?;
            workers.push(Mutex::new(jobs_tx));
        }
        drop(ready_tx);
        for _ in 0..count {
            ready_rx
                .recv()
                .unwrap_or_else(|_| Err("a vCPU thread ended while starting".to_string()))?;
        }
        Ok(VcpuThreads { workers })
    }

    /// Threads with no per-thread set-up (tests, the sandbox off).
    pub fn unconfined(count: u32) -> Result<VcpuThreads, String> {
        Self::start(count, Arc::new(|_| Ok(())))
    }

    pub fn count(&self) -> u32 {
        self.workers.len() as u32
    }

    fn submit(&self, index: u32, job: Job) -> Result<(), AccelError> {
        let sender = self
            .workers
            .get(index as usize)
            .ok_or(AccelError::NoVcpuThread { index })?;
        sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send(job)
            .map_err(|_| AccelError::NoVcpuThread { index })
    }
}

/// Runs `board`'s vCPUs on `threads`. After a guest reset, `rebuild` makes a
/// fresh board (fresh memory, reloaded images) and the machine starts over,
/// unless `reboot` is false.
pub fn run<E>(
    accel: &dyn Accelerator,
    threads: &VcpuThreads,
    reboot: bool,
    board: Box<dyn Board>,
    mut rebuild: impl FnMut() -> Result<Box<dyn Board>, E>,
) -> Result<RunOutcome, RunError<E>> {
    let mut board = Some(board);
    loop {
        let board = match board.take() {
            Some(board) => board,
            None => rebuild().map_err(RunError::Board)?,
        };
        let lifecycle = board.vm_spec().lifecycle;
        let exit = run_machine(accel, threads, board.as_ref()).map_err(RunError::Accel)?;
        match exit {
            VcpuExit::Shutdown(status) => return Ok(RunOutcome::Exited(status)),
            VcpuExit::Halted { pc } => return Ok(RunOutcome::Halted { pc }),
            VcpuExit::Crashed(crash) => return Ok(RunOutcome::Crashed(crash)),
            VcpuExit::Reset if !reboot => return Ok(RunOutcome::Reset),
            VcpuExit::Reset => {
                // The request (and the stop it made of the other vCPUs) is
                // done with; the new machine starts with none pending.
                lifecycle.clear();
                log::info!("guest reset: restarting the machine");
            }
        }
    }
}

/// Runs one incarnation of the machine until its first vCPU stops; stops the
/// others and returns that first exit.
fn run_machine(
    accel: &dyn Accelerator,
    threads: &VcpuThreads,
    board: &dyn Board,
) -> Result<VcpuExit, AccelError> {
    let spec = board.vm_spec();
    let lifecycle = spec.lifecycle.clone();
    let cpus = spec.cpus;
    if cpus > threads.count() {
        return Err(AccelError::NoVcpuThread {
            index: threads.count(),
        });
    }
    lifecycle.clear_parked();
    let vm = accel.create_vm(spec)?;
    let mut vcpus: Vec<Box<dyn Vcpu>> = Vec::new();
    for index in 0..cpus {
        let boot = board.boot_state(index);
        lifecycle.set_power(index, boot.power == Power::On);
        vcpus.push(vm.create_vcpu(index, &boot)?);
    }
    let (done_tx, done_rx) = mpsc::channel::<(u32, Result<VcpuExit, AccelError>)>();
    let mut running = 0;
    for (index, mut vcpu) in (0..cpus).zip(vcpus) {
        let done = done_tx.clone();
        threads.submit(
            index,
            Box::new(move || {
                // A panic is a bug in moat; it ends the run like any other
                // failure instead of leaving the other vCPUs running alone.
                let exit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| vcpu.run()))
                    .unwrap_or(Err(AccelError::VcpuPanicked { index }));
                // The vCPU is dropped here, on its own thread, before the
                // caller hears of the exit.
                drop(vcpu);
                let _ = done.send((index, exit));
            }),
        )?;
        running += 1;
    }
    drop(done_tx);

    // KVM keeps a halted vCPU inside KVM_RUN; only a kick lets it look at
    // whether it halted for good (interrupts masked, nothing to wake it).
    // With several vCPUs KVM's own state cannot tell that race-free (a
    // wake-up IPI may be in flight between two vCPUs' looks), so only a
    // one-vCPU KVM machine is probed. TCG decides at the `hlt` itself, for
    // any number of vCPUs, and sleeps without a timeout.
    let probe = (accel.kind() == AccelKind::Kvm && cpus == 1).then_some(HALT_PROBE_INTERVAL);
    let mut first: Option<Result<VcpuExit, AccelError>> = None;
    while running > 0 {
        let received = match probe {
            Some(interval) => done_rx.recv_timeout(interval),
            None => done_rx
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        let (index, exit) = match received {
            Ok(done) => done,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                for cpu in 0..cpus {
                    lifecycle.vcpu(cpu).kick();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        running -= 1;
        if first.is_none() {
            log::debug!("vCPU {index} stopped first: {exit:?}");
            first = Some(exit);
            // Every other vCPU leaves at its next check; the request is
            // cleared before the machine runs again.
            lifecycle.request_shutdown(0);
        } else if let Err(error) = exit {
            log::debug!("vCPU {index} failed while stopping: {error}");
        }
    }
    drop(vm);
    first.unwrap_or(Err(AccelError::NoVcpuThread { index: 0 }))
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    #[error("{0}")]
    Board(E),
    #[error(transparent)]
    Accel(AccelError),
}
