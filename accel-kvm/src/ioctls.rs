//! The KVM ioctls accel-kvm issues, listed for the sandbox.

/// KVM ioctl numbers, computed as the kernel's `_IO`, `_IOR`, `_IOW` and `_IOWR`
/// macros do, with the structure sizes from kvm-bindings.
mod kvm_ioctl {
    use kvm_bindings::{
        kvm_cpuid2, kvm_fpu, kvm_irq_level, kvm_mp_state, kvm_msrs, kvm_regs, kvm_sregs,
        kvm_userspace_memory_region,
    };

    const KVMIO: u64 = 0xae;
    const NONE: u64 = 0;
    const WRITE: u64 = 1;
    const READ: u64 = 2;

    const fn ioc(direction: u64, number: u64, size: usize) -> u64 {
        (direction << 30) | ((size as u64) << 16) | (KVMIO << 8) | number
    }

    pub const GET_API_VERSION: u64 = ioc(NONE, 0x00, 0);
    pub const CREATE_VM: u64 = ioc(NONE, 0x01, 0);
    pub const GET_VCPU_MMAP_SIZE: u64 = ioc(NONE, 0x04, 0);
    pub const GET_SUPPORTED_CPUID: u64 = ioc(READ | WRITE, 0x05, size_of::<kvm_cpuid2>());
    pub const CREATE_VCPU: u64 = ioc(NONE, 0x41, 0);
    pub const SET_USER_MEMORY_REGION: u64 =
        ioc(WRITE, 0x46, size_of::<kvm_userspace_memory_region>());
    pub const SET_TSS_ADDR: u64 = ioc(NONE, 0x47, 0);
    pub const RUN: u64 = ioc(NONE, 0x80, 0);
    pub const GET_REGS: u64 = ioc(READ, 0x81, size_of::<kvm_regs>());
    pub const SET_REGS: u64 = ioc(WRITE, 0x82, size_of::<kvm_regs>());
    pub const GET_SREGS: u64 = ioc(READ, 0x83, size_of::<kvm_sregs>());
    pub const SET_SREGS: u64 = ioc(WRITE, 0x84, size_of::<kvm_sregs>());
    pub const SET_MSRS: u64 = ioc(WRITE, 0x89, size_of::<kvm_msrs>());
    pub const SET_FPU: u64 = ioc(WRITE, 0x8d, size_of::<kvm_fpu>());
    pub const SET_CPUID2: u64 = ioc(WRITE, 0x90, size_of::<kvm_cpuid2>());
    pub const CREATE_IRQCHIP: u64 = ioc(NONE, 0x60, 0);
    pub const IRQ_LINE: u64 = ioc(WRITE, 0x61, size_of::<kvm_irq_level>());
    pub const GET_MP_STATE: u64 = ioc(READ, 0x98, size_of::<kvm_mp_state>());
}

/// Every KVM ioctl this crate makes once moat is sandboxed (building a VM,
/// again on each guest reset; running vCPUs; raising interrupt lines), by
/// request number, for the sandbox's seccomp allow-list. A new ioctl in this
/// crate needs a line here (the guest tests fail with SIGSYS otherwise).
pub const ALLOWED_IOCTLS: [(u64, &str); 18] = [
    // Checked once more by kvm-ioctls when it wraps the open /dev/kvm.
    (kvm_ioctl::GET_API_VERSION, "KVM_GET_API_VERSION"),
    // A guest reset builds a new VM on the open /dev/kvm.
    (kvm_ioctl::CREATE_VM, "KVM_CREATE_VM"),
    // Sizing the kvm_run area of a new vCPU.
    (kvm_ioctl::GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE"),
    // The CPUID the vCPU is given is filtered from what KVM supports.
    (kvm_ioctl::GET_SUPPORTED_CPUID, "KVM_GET_SUPPORTED_CPUID"),
    (kvm_ioctl::CREATE_VCPU, "KVM_CREATE_VCPU"),
    // Guest RAM into a memory slot.
    (
        kvm_ioctl::SET_USER_MEMORY_REGION,
        "KVM_SET_USER_MEMORY_REGION",
    ),
    // Intel VMX needs a TSS area below 4 GiB.
    (kvm_ioctl::SET_TSS_ADDR, "KVM_SET_TSS_ADDR"),
    // Running guest code.
    (kvm_ioctl::RUN, "KVM_RUN"),
    // Boot state in, register dumps and halt addresses out.
    (kvm_ioctl::GET_REGS, "KVM_GET_REGS"),
    (kvm_ioctl::SET_REGS, "KVM_SET_REGS"),
    (kvm_ioctl::GET_SREGS, "KVM_GET_SREGS"),
    (kvm_ioctl::SET_SREGS, "KVM_SET_SREGS"),
    (kvm_ioctl::SET_MSRS, "KVM_SET_MSRS"),
    (kvm_ioctl::SET_FPU, "KVM_SET_FPU"),
    (kvm_ioctl::SET_CPUID2, "KVM_SET_CPUID2"),
    // The in-kernel PIC, I/O APIC and local APICs, made with each VM.
    (kvm_ioctl::CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP"),
    // Device interrupt lines, from whichever thread the device runs on.
    (kvm_ioctl::IRQ_LINE, "KVM_IRQ_LINE"),
    // Is a kicked vCPU halted for good?
    (kvm_ioctl::GET_MP_STATE, "KVM_GET_MP_STATE"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_ioctl_numbers_match_the_kernel_headers() {
        // Values from <linux/kvm.h> on x86-64.
        assert_eq!(kvm_ioctl::GET_API_VERSION, 0xae00);
        assert_eq!(kvm_ioctl::CREATE_VM, 0xae01);
        assert_eq!(kvm_ioctl::GET_VCPU_MMAP_SIZE, 0xae04);
        assert_eq!(kvm_ioctl::GET_SUPPORTED_CPUID, 0xc008_ae05);
        assert_eq!(kvm_ioctl::CREATE_VCPU, 0xae41);
        assert_eq!(kvm_ioctl::SET_USER_MEMORY_REGION, 0x4020_ae46);
        assert_eq!(kvm_ioctl::SET_TSS_ADDR, 0xae47);
        assert_eq!(kvm_ioctl::RUN, 0xae80);
        assert_eq!(kvm_ioctl::GET_REGS, 0x8090_ae81);
        assert_eq!(kvm_ioctl::SET_REGS, 0x4090_ae82);
        assert_eq!(kvm_ioctl::GET_SREGS, 0x8138_ae83);
        assert_eq!(kvm_ioctl::SET_SREGS, 0x4138_ae84);
        assert_eq!(kvm_ioctl::SET_MSRS, 0x4008_ae89);
        assert_eq!(kvm_ioctl::SET_FPU, 0x41a0_ae8d);
        assert_eq!(kvm_ioctl::SET_CPUID2, 0x4008_ae90);
        assert_eq!(kvm_ioctl::CREATE_IRQCHIP, 0xae60);
        assert_eq!(kvm_ioctl::IRQ_LINE, 0x4008_ae61);
        assert_eq!(kvm_ioctl::GET_MP_STATE, 0x8004_ae98);
    }
}
