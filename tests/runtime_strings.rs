//! Memory and string helpers (testdata/src/rt_strings.bpf.c on
//! testdata/traces/rt_strings.json), on both engines: the probe_read family, trace_printk
//! and trace_vprintk formats as bpf_bprintf_prepare accepts and bstr_printf prints them,
//! snprintf, strncmp, strtol/strtoul (kernel/bpf/helpers.c) and bpf_loop.

mod runtime_common;

use std::sync::OnceLock;

use runtime_common::{run, Run};

const OBJ: &str = "testdata/obj/rt_strings.bpf.o";
const TRACE: &str = "testdata/traces/rt_strings.json";

fn strings_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let r = run(OBJ, TRACE, &[]);
        assert!(r.of_type("fault").is_empty(), "{:?}", r.of_type("fault"));
        r
    })
}

fn warnings(r: &Run, event: u64) -> Vec<String> {
    r.of_type("warning")
        .iter()
        .filter(|w| w["event"] == event)
        .map(|w| w["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn probe_reads_of_kernel_and_user_memory() {
    let r = strings_run();
    assert_eq!(
        r.printk_of_event(0),
        [
            "probe_read_kernel=0 first=k eighth=s",
            // _str helpers return the length with the NUL; a short buffer gets size - 1
            // bytes and a NUL
            "probe_read_kernel_str=14 kernel-string truncated=6 kerne",
            "probe_read_user=0 first=u fourth=r",
            "probe_read_user_str=12 user-string",
            // the legacy helpers read user or kernel memory
            "probe_read=0 probe_read_str user=6 kernel=14",
            // user reads of kernel addresses fault (-EFAULT); kernel reads of user addresses
            // are refused by x86's copy_from_kernel_nofault (-ERANGE)
            "user read of kernel=-14 kernel read of user=-34 unmapped=-14",
            // failed reads zero the destination
            "unmapped strings kernel=-14 user=-14 zeroed=1",
        ]
    );
    // The simulator says where a program read memory the trace did not give.
    let w = warnings(r, 0);
    assert_eq!(w.len(), 5, "{w:#?}");
    assert!(
        w[2].contains("kernel memory at 0xffffc90000001000"),
        "{w:#?}"
    );
}

#[test]
fn trace_printk_formats_as_the_kernel_prints_them() {
    let r = strings_run();
    let lines = r.printk_of_event(1);
    assert_eq!(
        lines[..17],
        [
            "int d=-5 i=-6 u=7",
            // bpf_trace_printk returns the length of the line
            "returned 17",
            "hex x=beef X=BEEF",
            "long ld=-1 lu=18446744073709551615 llx=1deadbeef",
            // without l, arguments are 32-bit
            "32 bits d=5 x=ffffffff u=4294967295",
            "width [   42] [42   ] [-0042]",
            "flags [+42] [ 42] [   ab]",
            "char [A] [  z] %",
            "strings [word] [word  ] [  word]",
            // %s reads kernel or user memory (by address on x86)
            "kernel from-kernel user from-user",
            "pks from-kernel pus from-user",
            "ip 192.168.1.20 192.168.001.020",
            "ip6 2001:0db8:0000:0000:0000:0000:0000:0001",
            "ip6 20010db8000000000000000000000001",
            "pointer ffff888012345678",
            // more than 3 arguments go through bpf_trace_vprintk
            "vprintk 1 2 3 4 5 word",
            // %o, #, a precision, h, 4 arguments to trace_printk, %s followed by a letter,
            // %pZ and a format without its NUL are all -EINVAL, and print nothing
            "refused o=-22 #=-22 .=-22",
        ]
    );
    assert_eq!(
        lines[17..],
        [
            "refused h=-22 4 args=-22 sx=-22",
            "refused pZ=-22 no NUL=-22"
        ]
    );
    let refusals: Vec<String> = warnings(r, 1);
    assert_eq!(refusals.len(), 7, "{refusals:#?}");
    assert!(refusals
        .iter()
        .all(|w| w.starts_with("printk format refused")));
}

#[test]
fn trace_vprintk_takes_an_array_of_u64() {
    let r = strings_run();
    assert_eq!(
        r.printk_of_event(2),
        [
            "vprintk direct 20+22",
            // data_len must be a multiple of 8 and at most 12 arguments
            "vprintk ok=20 odd size=-22 13 args=-22",
        ]
    );
}

#[test]
fn snprintf_writes_and_returns_the_length_with_the_nul() {
    let r = strings_run();
    assert_eq!(
        r.printk_of_event(3),
        [
            "snprintf n=18 out=pid=4242 name=sim",
            // truncated to the buffer (7 bytes and a NUL), the return is what it needed
            "snprintf truncated n=11 out=0123456",
            "snprintf bad=-22",
        ]
    );
}

#[test]
fn strncmp_returns_minus_one_zero_or_one() {
    let r = strings_run();
    assert_eq!(
        r.printk_of_event(4),
        [
            // x86_64's strncmp (lib/string.c) returns -1, 0 or 1, not a difference
            "strncmp same=0 less=-1 greater=1",
            "strncmp first 3 of bash vs bax=-1 first 2=0",
        ]
    );
}

#[test]
fn strtol_and_strtoul() {
    let r = strings_run();
    assert_eq!(
        r.printk_of_event(5),
        [
            // the return is the number of characters consumed; the result is 0 (not
            // left alone: it was 777) on every error
            "bpf_strtol '  -42xyz' base 10: 5 -> -42",
            "bpf_strtol '0x1f' base 0: 4 -> 31",
            "bpf_strtol '017' base 0: 3 -> 15",
            "bpf_strtol 'ff' base 16: 2 -> 255",
            // no '+' sign
            "bpf_strtol '+5' base 10: -22 -> 0",
            "bpf_strtol 'zz' base 10: -22 -> 0",
            "bpf_strtol '9223372036854775807' base 10: 19 -> 9223372036854775807",
            "bpf_strtol '9223372036854775808' base 10: -34 -> 0",
            "bpf_strtol '-9223372036854775808' base 10: 20 -> -9223372036854775808",
            "bpf_strtol '12' base 3: -22 -> 0",
            "bpf_strtoul '18446744073709551615' base 10: 20 -> -1",
            "bpf_strtoul '18446744073709551616' base 10: -34 -> 0",
            "bpf_strtoul '-1' base 10: -22 -> 0",
            "bpf_strtoul ' 0755' base 8: 5 -> 493",
        ]
    );
}

#[test]
fn bpf_loop_calls_stops_and_checks() {
    let r = strings_run();
    assert_eq!(
        r.printk_of_event(6),
        [
            // the callback returned 1 at index 9: 10 calls, 0 + ... + 9
            "loop stop at 9: calls=10 sum=45",
            // the count may come from the context
            "loop 1000 calls count=1000",
            // flags must be 0; more than BPF_MAX_LOOPS (1 << 23) is -E2BIG
            "loop flags=-22 too many=-7",
        ]
    );
}
