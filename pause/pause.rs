//! nsnet-pause: the process that holds a pod's namespaces. PID 1 of the pod's
//! PID namespace: it blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP and waits for
//! them; SIGCHLD reaps every exited child, SIGTERM and SIGINT end it with 0.
//!
//! Freestanding on purpose (no std, no libc, raw Linux syscalls, static, no
//! start files): its whole resident set is a few pages, where even an empty
//! std program with glibc keeps 1.7 MiB. build.rs compiles it with the same
//! rustc and nsnet embeds the result (see src/pod/pause.rs). x86_64 only; other
//! architectures fall back to `nsnet __pause`.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

const SYS_WRITE: usize = 1;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_GETPID: usize = 39;
const SYS_WAIT4: usize = 61;
const SYS_RT_SIGTIMEDWAIT: usize = 128;
const SYS_EXIT_GROUP: usize = 231;
const SYS_PRCTL: usize = 157;
const PR_SET_NAME: usize = 15;

const SIGHUP: usize = 1;
const SIGINT: usize = 2;
const SIGTERM: usize = 15;
const SIGCHLD: usize = 17;
const SIG_BLOCK: usize = 0;
const WNOHANG: usize = 1;

// The kernel enters _start with the stack 16-byte aligned and no return
// address; align it for the call as the ABI expects and never return.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call pause_main",
    "ud2",
);

/// A raw system call with up to four arguments.
///
/// # Safety
/// The caller passes arguments valid for system call `n`.
unsafe fn syscall(n: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux system call convention: number in rax, arguments
    // in rdi, rsi, rdx, r10; the kernel clobbers rcx and r11.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

fn exit(code: usize) -> ! {
    // SAFETY: exit_group takes a status and does not return.
    unsafe {
        syscall(SYS_EXIT_GROUP, code, 0, 0, 0);
    }
    loop {}
}

#[no_mangle]
extern "C" fn pause_main() -> ! {
    // SAFETY: every call below passes plain integers or pointers to locals that
    // live across the call; none of the system calls keeps a pointer.
    unsafe {
        // Started from an in-memory file, its command name would be a file
        // descriptor number; give `ps` a real one.
        let name = b"nsnet-pause\0";
        syscall(SYS_PRCTL, PR_SET_NAME, name.as_ptr() as usize, 0, 0);
        if syscall(SYS_GETPID, 0, 0, 0, 0) != 1 {
            let msg = b"nsnet-pause: warning: not PID 1 of a PID namespace; orphans will not be reaped here\n";
            syscall(SYS_WRITE, 2, msg.as_ptr() as usize, msg.len(), 0);
        }
        let mask: u64 = [SIGCHLD, SIGTERM, SIGINT, SIGHUP]
            .iter()
            .fold(0, |m, s| m | 1 << (s - 1));
        let set = &mask as *const u64 as usize;
        syscall(SYS_RT_SIGPROCMASK, SIG_BLOCK, set, 0, 8);
        loop {
            let sig = syscall(SYS_RT_SIGTIMEDWAIT, set, 0, 0, 8);
            if sig == SIGTERM as isize || sig == SIGINT as isize {
                exit(0);
            }
            if sig == SIGCHLD as isize {
                while syscall(SYS_WAIT4, usize::MAX, 0, WNOHANG, 0) > 0 {}
            }
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(2)
}
