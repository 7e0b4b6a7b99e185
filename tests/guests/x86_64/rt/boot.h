/* Shared constants for the assembly start files. */
#define BOOT_ABI_UNKNOWN   0
#define BOOT_ABI_PVH       1
#define BOOT_ABI_MULTIBOOT 2
#define BOOT_ABI_ELF64     3

#define GDT_CODE64 0x08
#define GDT_DATA   0x10
#define STACK_SIZE 0x4000
