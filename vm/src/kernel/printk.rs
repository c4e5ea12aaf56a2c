//! The kernel's `bpf_trace_printk` / `bpf_snprintf` format semantics (bpf_bprintf_prepare):
//! `%d %i %u %x %X %o %c %s %%`, the `l`/`ll`/`h`/`hh` length modifiers, flags `-+ 0#`,
//! width and precision, and the pointer forms `%p %px %pK %pI4 %pi4 %pI6 %pi6`. Anything
//! else is refused (-EINVAL), as the kernel refuses it.
//!
//! `%p` and `%pK` print the raw pointer (the kernel hashes it; a hash would make output
//! depend on a secret key, so the simulator shows the value).

use std::fmt::Write as _;

/// Why a format was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

/// How a formatter reads program memory for `%s` and `%pI4`-style arguments.
pub trait ArgMemory {
    /// The NUL-terminated string at `addr` (without the NUL), at most `max` bytes.
    fn string(&mut self, addr: u64, max: usize) -> Option<Vec<u8>>;
    /// `len` bytes at `addr`.
    fn bytes(&mut self, addr: u64, len: usize) -> Option<Vec<u8>>;
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
        if c != b'%' {
            out.push(c as char);
            i += 1;
            continue;
        }
        i += 1;
        if fmt.get(i) == Some(&b'%') {
            out.push('%');
            i += 1;
            continue;
        }
        // flags, width, precision
        let mut spec = Spec::default();
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => spec.left = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'0' => spec.zero = true,
                b'#' => spec.alt = true,
                _ => break,
            }
            i += 1;
        }
        spec.width = digits(fmt, &mut i);
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            spec.precision = Some(digits(fmt, &mut i).unwrap_or(0));
        }
        let mut len = 0; // 0: int, 1: long, 2: long long, -1: short, -2: char
        while let Some(&m) = fmt.get(i) {
            match m {
                b'l' if len < 2 => len += 1,
                b'h' if len > -2 && len <= 0 => len -= 1,
                _ => break,
            }
            i += 1;
        }
        let conv = *fmt
            .get(i)
            .ok_or_else(|| FormatError("format ends inside a conversion".into()))?;
        i += 1;
        let bits = match len {
            2 | 1 => 64,
            -1 => 16,
            -2 => 8,
            _ => 32,
        };
        let body = match conv {
            b'd' | b'i' => {
                let v = take("%d")?;
                let v = sign_extend(v, bits);
                let mut s = v.unsigned_abs().to_string();
                apply_precision(&mut s, spec.precision);
                let sign = if v < 0 {
                    "-"
                } else if spec.plus {
                    "+"
                } else if spec.space {
                    " "
                } else {
                    ""
                };
                pad_number(sign, &s, &spec)
            }
            b'u' | b'x' | b'X' | b'o' => {
                let v = truncate(take("%u")?, bits);
                let mut s = match conv {
                    b'u' => v.to_string(),
                    b'x' => format!("{v:x}"),
                    b'X' => format!("{v:X}"),
                    _ => format!("{v:o}"),
                };
                apply_precision(&mut s, spec.precision);
                let prefix = match (spec.alt && v != 0, conv) {
                    (true, b'x') => "0x",
                    (true, b'X') => "0X",
                    (true, b'o') => "0",
                    _ => "",
                };
                pad_number(prefix, &s, &spec)
            }
            b'c' => {
                let v = take("%c")? as u8;
                pad(&(v as char).to_string(), &spec)
            }
            b's' => {
                let addr = take("%s")?;
                let max = spec.precision.unwrap_or(1023).min(1023);
                let s = match mem.string(addr, max) {
                    Some(b) => String::from_utf8_lossy(&b).into_owned(),
                    None => {
                        unreadable.push(addr);
                        String::new()
                    }
                };
                pad(&s, &spec)
            }
            b'p' => {
                let addr = take("%p")?;
                let kind = fmt.get(i).copied();
                let s = match kind {
                    Some(b'I') | Some(b'i')
                        if matches!(fmt.get(i + 1), Some(b'4') | Some(b'6')) =>
                    {
                        let v6 = fmt[i + 1] == b'6';
                        let leading_zeros = kind == Some(b'i');
                        i += 2;
                        let n = if v6 { 16 } else { 4 };
                        match mem.bytes(addr, n) {
                            Some(b) if v6 => ipv6(&b, leading_zeros),
                            Some(b) if leading_zeros => {
                                format!("{:03}.{:03}.{:03}.{:03}", b[0], b[1], b[2], b[3])
                            }
                            Some(b) => format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]),
                            None => {
                                unreadable.push(addr);
                                String::new()
                            }
                        }
                    }
                    Some(b'x') | Some(b'K') => {
                        i += 1;
                        format!("{addr:016x}")
                    }
                    Some(c) if c.is_ascii_alphanumeric() => {
                        return Err(FormatError(format!("unsupported %p{}", c as char)))
                    }
                    _ => format!("{addr:016x}"),
                };
                pad(&s, &spec)
            }
            other => {
                return Err(FormatError(format!(
                    "unsupported conversion %{}",
                    other as char
                )))
            }
        };
        out.push_str(&body);
    }
    Ok((out, unreadable))
}

#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
    alt: bool,
    width: Option<usize>,
    precision: Option<usize>,
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

fn apply_precision(s: &mut String, precision: Option<usize>) {
    if let Some(p) = precision {
        while s.len() < p {
            s.insert(0, '0');
        }
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
    } else if spec.zero && spec.precision.is_none() {
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

fn ipv6(b: &[u8], full: bool) -> String {
    let mut s = String::new();
    for (k, pair) in b.chunks(2).enumerate() {
        if k > 0 {
            s.push(':');
        }
        let v = u16::from_be_bytes([pair[0], pair[1]]);
        if full {
            let _ = write!(s, "{v:04x}");
        } else {
            let _ = write!(s, "{v:x}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem;
    impl ArgMemory for Mem {
        fn string(&mut self, addr: u64, max: usize) -> Option<Vec<u8>> {
            (addr == 0x10).then(|| b"hello".iter().copied().take(max).collect())
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
            f("[%5d|%-5d|%05d|%+d]", &[42, 42, 42, 42]).unwrap(),
            "[   42|42   |00042|+42]"
        );
        assert_eq!(f("%#x %c %%", &[255, b'A' as u64]).unwrap(), "0xff A %");
        assert_eq!(f("%hhd %hd", &[0x1ff, 0x1ffff]).unwrap(), "-1 -1");
    }

    #[test]
    fn strings_and_pointers() {
        assert_eq!(
            f("[%s] [%.3s] [%s]", &[0x10, 0x10, 0x99]).unwrap(),
            "[hello] [hel] []"
        );
        assert_eq!(
            f("%pI4 %pi4", &[0x20, 0x20]).unwrap(),
            "1.2.3.4 001.002.003.004"
        );
        assert_eq!(f("%px", &[0xabc]).unwrap(), "0000000000000abc");
        let (_, bad) = format(b"%s", &[0x99], 3, &mut Mem).unwrap();
        assert_eq!(bad, vec![0x99]);
    }

    #[test]
    fn refusals() {
        assert!(f("%n", &[1]).is_err());
        assert!(f("%d", &[]).is_err());
        assert!(format(b"%d %d %d %d", &[1, 2, 3, 4], 3, &mut Mem).is_err());
        assert!(f("%", &[]).is_err());
        assert!(f("%pZ", &[1]).is_err());
        assert_eq!(f("stops\0here %d", &[]).unwrap(), "stops");
    }
}
