# The user registers saved at every entry from ring 3 (Linux's struct
# pt_regs, arch/x86/include/asm/ptrace.h) and the extra slots hw.run_user
# keeps beside them. PROVISIONAL: the platform branch defines these once
# for C and Python (guest/ptrace.h), checked by a test.

R15, R14, R13, R12, RBP, RBX, R11, R10, R9, R8 = range(10)
RAX, RCX, RDX, RSI, RDI, ORIG_RAX, RIP, CS, EFLAGS, RSP, SS = range(10, 21)
FS_BASE, GS_BASE, ERROR, CR2, VECTOR = range(21, 26)
NR_REGS = 26

EVENT_SYSCALL = 256
EVENT_BADFRAME = 257

USER_DS = 0x1B
USER_CS = 0x23
