//! The kernel's `bpf_trace_printk` / `bpf_snprintf` format semantics: the formats
//! `bpf_bprintf_prepare` (kernel/bpf/helpers.c) accepts, printed as the kernel's
//! `bstr_printf` prints them. Accepted: `%d %i %u %x %X` with the `l`/`ll` length
//! modifiers, `%c`, `%s` (followed by a NUL, space or punctuation), `%%`, the flags
//! `0 + - space` and a width, and the pointer forms `%p %pK %px %ps %pS %pB`, `%pks`/`%pus`
//! (strings from kernel/user memory) and `%pI4 %pi4 %pI6 %pi6`. Anything else (`%o`, `#`,
//! a precision, `h`/`hh`, other `%p` forms, characters that are not printable ASCII or
//! whitespace) is refused (-EINVAL), as the kernel refuses it.
//!
//! `%p` and `%pK` print the raw pointer (the kernel hashes it; a hash would make output
//! depend on a secret key, so the simulator shows the value); `%ps`, `%pS` and `%pB` print
//! `0x` and the address, as the kernel does for an address without a symbol.

use std::fmt::Write as _;

/// Why a format was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

/// Where a string argument is read from: `%s` reads kernel or user memory (x86 tells
/// them apart by address), `%pks` kernel memory only, `%pus` user memory only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrSource {
    Any,
    Kernel,
    User,
}

/// How a formatter reads program memory for `%s` and `%pI4`-style arguments.
pub trait ArgMemory {
    /// The NUL-terminated string at `addr` (without the NUL), at most `max` bytes.
    fn string(&mut self, addr: u64, max: usize, from: StrSource) -> Option<Vec<u8>>;
    /// `len` bytes at `addr`.
    fn bytes(&mut self, addr: u64, len: usize) -> Option<Vec<u8>>;
}

/// `isprint || isspace`, and ASCII: the characters a format may hold.
fn allowed(c: u8) -> bool {
    matches!(c, 0x20..=0x7e | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What may follow `%s`: the end, a space or punctuation.
fn ends_string(c: u8) -> bool {
    c == 0 || c.is_ascii_whitespace() || c == 0x0b || c.is_ascii_punctuation()
}

/// Formats `fmt` (up to its first NUL) with `args`. Strings that cannot be read print as
/// empty, as in the kernel; their addresses are returned so the caller can warn.
pub fn format(
    fmt: &[u8],
    args: &[u64],
    max_args: usize,
    mem: &mut dyn ArgMemory,
) -> Result<(String, Vec<u64>), FormatError> {
    let fmt = fmt.split(|&b| b == 0).next().unwrap_or(&[]);
    let at = |j: usize| fmt.get(j).copied().unwrap_or(0);
    let mut out = String::new();
    let mut unreadable = Vec::new();
    let mut next_arg = 0usize;
    let mut i = 0;
    let mut take = |what: &str| -> Result<u64, FormatError> {
        let v = args.get(next_arg).copied();
        next_arg += 1;
        if next_arg > max_args {
            return Err(FormatError(format!("more than {max_args} arguments")));
        }
        v.ok_or_else(|| FormatError(format!("no argument for {what}")))
    };
    while i < fmt.len() {
        let c = fmt[i];
        if !allowed(c) {
            return Err(FormatError(format!(
                "character {c:#04x} is not printable ASCII"
            )));
        }
        if c != b'%' {
            out.push(c as char);
            i += 1;
            continue;
        }
        i += 1;
        if at(i) == b'%' {
            out.push('%');
            i += 1;
            continue;
        }
        // flags and width
        let mut spec = Spec::default();
        loop {
            match at(i) {
                b'-' => spec.left = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        spec.width = digits(fmt, &mut i);
        let conv = at(i);
        let body = match conv {
            b'p' => {
                let addr = take("%p")?;
                let kind = at(i + 1);
                if kind == 0 || kind.is_ascii_whitespace() || kind.is_ascii_punctuation() {
                    i += 1;
                    pad(&format!("{addr:016x}"), &spec)
                } else if (kind == b'k' || kind == b'u') && at(i + 2) == b's' {
                    i += 3;
                    if !ends_string(at(i)) {
                        return Err(FormatError(format!(
                            "%p{}s followed by '{}'",
                            kind as char,
                            at(i) as char
                        )));
                    }
                    let from = if kind == b'k' {
                        StrSource::Kernel
                    } else {
                        StrSource::User
                    };
                    string_arg(mem, addr, from, &mut unreadable, &spec)
                } else if matches!(kind, b'K' | b'x') {
                    i += 2;
                    pad(&format!("{addr:016x}"), &spec)
                } else if matches!(kind, b's' | b'S' | b'B') {
                    i += 2;
                    pad(&format!("{addr:#x}"), &spec)
                } else if matches!(kind, b'i' | b'I') && matches!(at(i + 2), b'4' | b'6') {
                    let v6 = at(i + 2) == b'6';
                    let leading_zeros = kind == b'i';
                    i += 3;
                    let n = if v6 { 16 } else { 4 };
                    // An unreadable address prints as zeros, as in the kernel.
                    let b = mem.bytes(addr, n).unwrap_or_else(|| {
                        unreadable.push(addr);
                        vec![0; n]
                    });
                    let s = if v6 {
                        ipv6(&b, leading_zeros)
                    } else if leading_zeros {
                        format!("{:03}.{:03}.{:03}.{:03}", b[0], b[1], b[2], b[3])
                    } else {
                        format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
                    };
                    pad(&s, &spec)
                } else {
                    return Err(FormatError(format!("unsupported %p{}", kind as char)));
                }
            }
            b's' => {
                let addr = take("%s")?;
                i += 1;
                if !ends_string(at(i)) {
                    return Err(FormatError(format!("%s followed by '{}'", at(i) as char)));
                }
                string_arg(mem, addr, StrSource::Any, &mut unreadable, &spec)
            }
            b'c' => {
                let v = take("%c")? as u8;
                i += 1;
                pad(&(v as char).to_string(), &spec)
            }
            _ => {
                let mut bits = 32;
                for _ in 0..2 {
                    if at(i) == b'l' {
                        bits = 64;
                        i += 1;
                    }
                }
                let conv = at(i);
                i += 1;
                match conv {
                    b'd' | b'i' => {
                        let v = sign_extend(take("%d")?, bits);
                        let sign = if v < 0 {
                            "-"
                        } else if spec.plus {
                            "+"
                        } else if spec.space {
                            " "
                        } else {
                            ""
                        };
                        pad_number(sign, &v.unsigned_abs().to_string(), &spec)
                    }
                    b'u' | b'x' | b'X' => {
                        let v = truncate(take("%u")?, bits);
                        let s = match conv {
                            b'u' => v.to_string(),
                            b'x' => format!("{v:x}"),
                            _ => format!("{v:X}"),
                        };
                        pad_number("", &s, &spec)
                    }
                    0 => return Err(FormatError("format ends inside a conversion".into())),
                    other => {
                        return Err(FormatError(format!(
                            "unsupported conversion %{}",
                            other as char
                        )))
                    }
                }
            }
        };
        out.push_str(&body);
    }
    Ok((out, unreadable))
}

fn string_arg(
    mem: &mut dyn ArgMemory,
    addr: u64,
    from: StrSource,
    unreadable: &mut Vec<u64>,
    spec: &Spec,
) -> String {
    let s = match mem.string(addr, 1023, from) {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => {
            unreadable.push(addr);
            String::new()
        }
    };
    pad(&s, spec)
}

#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
}

fn digits(fmt: &[u8], i: &mut usize) -> Option<usize> {
    let start = *i;
    while fmt.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    std::str::from_utf8(&fmt[start..*i])
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .map(|w| w.min(4096))
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

fn truncate(v: u64, bits: u32) -> u64 {
    if bits == 64 {
        v
    } else {
        v & ((1u64 << bits) - 1)
    }
}

fn pad_number(prefix: &str, digits: &str, spec: &Spec) -> String {
    let len = prefix.len() + digits.len();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        return format!("{prefix}{digits}");
    }
    let fill = width - len;
    if spec.left {
        format!("{prefix}{digits}{}", " ".repeat(fill))
    } else if spec.zero {
        format!("{prefix}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{prefix}{digits}", " ".repeat(fill))
    }
}

fn pad(s: &str, spec: &Spec) -> String {
    let width = spec.width.unwrap_or(0);
    let n = s.chars().count();
    if n >= width {
        s.to_string()
    } else if spec.left {
        format!("{s}{}", " ".repeat(width - n))
    } else {
        format!("{}{s}", " ".repeat(width - n))
    }
}

/// `%pI6`: eight groups of 4 hex digits with colons; `%pi6`: the same without colons
/// (lib/vsprintf.c; only `%pI6c` would compress zeros).
fn ipv6(b: &[u8], no_colons: bool) -> String {
    let mut s = String::new();
    for (k, pair) in b.chunks(2).enumerate() {
        if k > 0 && !no_colons {
            s.push(':');
        }
        let _ = write!(s, "{:04x}", u16::from_be_bytes([pair[0], pair[1]]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "hello" in kernel memory at 0x10, "user" in user memory at 0x30, bytes 1.. at 0x20.
    struct Mem;
    impl ArgMemory for Mem {
        fn string(&mut self, addr: u64, max: usize, from: StrSource) -> Option<Vec<u8>> {
            let s: &[u8] = match (addr, from) {
                (0x10, StrSource::Any | StrSource::Kernel) => b"hello",
                (0x30, StrSource::Any | StrSource::User) => b"user",
                _ => return None,
            };
            Some(s.iter().copied().take(max).collect())
        }
        fn bytes(&mut self, addr: u64, len: usize) -> Option<Vec<u8>> {
            (addr == 0x20).then(|| (1..=len as u8).collect())
        }
    }

    fn f(fmt: &str, args: &[u64]) -> Result<String, FormatError> {
        format(fmt.as_bytes(), args, 12, &mut Mem).map(|(s, _)| s)
    }

    #[test]
    fn integer_conversions() {
        assert_eq!(f("pid %d.\n", &[4242]).unwrap(), "pid 4242.\n");
        assert_eq!(f("%d %ld", &[u64::MAX, u64::MAX]).unwrap(), "-1 -1");
        assert_eq!(
            f("%u %lu", &[u64::MAX, u64::MAX]).unwrap(),
            "4294967295 18446744073709551615"
        );
        assert_eq!(
            f("%x %llx %X", &[0x1_dead_beef, 0x1_dead_beef, 255]).unwrap(),
            "deadbeef 1deadbeef FF"
        );
        assert_eq!(
            f("[%5d|%-5d|%05d|%+d|% d]", &[42, 42, 42, 42, 42]).unwrap(),
            "[   42|42   |00042|+42| 42]"
        );
        assert_eq!(
            f("[%05d] [%-05d]", &[-42i64 as u64, 7]).unwrap(),
            "[-0042] [7    ]"
        );
        assert_eq!(f("%x %c %%", &[255, b'A' as u64]).unwrap(), "ff A %");
    }

    #[test]
    fn strings_and_pointers() {
        assert_eq!(
            f("[%s] [%5s] [%-5s] [%s]", &[0x10, 0x30, 0x30, 0x99]).unwrap(),
            "[hello] [ user] [user ] []"
        );
        assert_eq!(
            f("%pks %pus|%pks|%pus.", &[0x10, 0x30, 0x30, 0x10]).unwrap(),
            "hello user||."
        );
        assert_eq!(
            f("%pI4 %pi4", &[0x20, 0x20]).unwrap(),
            "1.2.3.4 001.002.003.004"
        );
        assert_eq!(f("%pI4", &[0x99]).unwrap(), "0.0.0.0");
        assert_eq!(
            f("%pI6 %pi6", &[0x20, 0x20]).unwrap(),
            "0102:0304:0506:0708:090a:0b0c:0d0e:0f10 0102030405060708090a0b0c0d0e0f10"
        );
        assert_eq!(
            f(
                "%px %pK %p, %ps %pS %pB",
                &[0xabc, 0xabc, 0xabc, 0xabc, 0xabc, 0xabc]
            )
            .unwrap(),
            "0000000000000abc 0000000000000abc 0000000000000abc, 0xabc 0xabc 0xabc"
        );
        let (_, bad) = format(b"%s", &[0x99], 3, &mut Mem).unwrap();
        assert_eq!(bad, vec![0x99]);
    }

    #[test]
    fn refusals() {
        for (fmt, args) in [
            ("%n", &[1u64][..]),
            ("%d", &[]),
            ("%", &[]),
            ("%pZ", &[1]),
            ("%o", &[1]),
            ("%#x", &[1]),
            ("%.3s", &[0x10]),
            ("%5.2d", &[1]),
            ("%hd", &[1]),
            ("%hhd", &[1]),
            ("%lc", &[1]),
            ("%sx", &[0x10]),
            ("%pksx", &[0x10]),
            ("%5%", &[]),
            ("tab\tok\x01", &[]),
        ] {
            assert!(f(fmt, args).is_err(), "{fmt:?} should be refused");
        }
        assert!(format(b"%d %d %d %d", &[1, 2, 3, 4], 3, &mut Mem).is_err());
        assert_eq!(f("stops\0here %d", &[]).unwrap(), "stops");
        assert_eq!(f("tab\tok", &[]).unwrap(), "tab\tok");
    }
}
