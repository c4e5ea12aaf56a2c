//! Reader of the bpf_conformance suite's `.data` files and of its plugin protocol's hex.
//!
//! Format (see the suite's README): `#` comments; directive lines `-- asm`, `-- raw`,
//! `-- mem`, `-- result`, `-- error`, `-- c`, `-- no register offset` each start a section.

use std::fmt;

/// One test of the suite.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConformanceTest {
    /// Assembler text of the `-- asm` section.
    pub asm: Option<String>,
    /// Whole 64-bit instructions of the `-- raw` section.
    pub raw: Option<Vec<u64>>,
    /// Initial memory (`-- mem`).
    pub mem: Vec<u8>,
    /// Expected r0 (`-- result`).
    pub result: Option<u64>,
    /// Expected failure text (`-- error`).
    pub error: Option<String>,
}

/// A `.data` file that does not follow the format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

/// Parses an integer as the suite writes it: hex with `0x`, else decimal (may be negative).
pub fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(n) = t.strip_prefix('-') {
        n.parse::<u64>().ok().map(|v| v.wrapping_neg())
    } else {
        t.parse().ok()
    }
}

/// Parses hex bytes separated by whitespace (`-- mem` and the plugin's MEM argument).
pub fn parse_hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.split_whitespace().collect();
    if !compact.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", compact.len()));
    }
    (0..compact.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&compact[i..i + 2], 16).map_err(|_| {
                format!(
                    "'{}' at byte {} is not a hex byte",
                    &compact[i..i + 2],
                    i / 2
                )
            })
        })
        .collect()
}

impl ConformanceTest {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        #[derive(PartialEq)]
        enum Section {
            None,
            Asm,
            Raw,
            Mem,
            Result,
            Error,
            Ignored,
        }
        let mut t = ConformanceTest::default();
        let mut section = Section::None;
        let mut asm = String::new();
        let mut raw = Vec::new();
        let mut mem = String::new();
        let mut result = String::new();
        let mut error = String::new();
        for (n, line) in text.lines().enumerate() {
            if let Some(directive) = line.trim().strip_prefix("--") {
                section = match directive.trim() {
                    "asm" => Section::Asm,
                    "raw" => Section::Raw,
                    "mem" => Section::Mem,
                    "result" => Section::Result,
                    "error" => Section::Error,
                    _ => Section::Ignored,
                };
                if section == Section::Asm {
                    t.asm = Some(String::new());
                }
                continue;
            }
            match section {
                Section::Asm => {
                    asm.push_str(line);
                    asm.push('\n');
                }
                Section::Raw => {
                    for tok in strip_comment(line).split_whitespace() {
                        raw.push(parse_u64(tok).ok_or(ParseError {
                            line: n + 1,
                            message: format!("'{tok}' is not a raw instruction"),
                        })?);
                    }
                }
                Section::Mem => {
                    mem.push_str(strip_comment(line));
                    mem.push(' ');
                }
                Section::Result => result.push_str(strip_comment(line)),
                Section::Error => {
                    error.push_str(line.trim());
                    error.push(' ');
                }
                Section::None | Section::Ignored => {}
            }
        }
        if t.asm.is_some() {
            t.asm = Some(asm);
        }
        if !raw.is_empty() {
            t.raw = Some(raw);
        }
        t.mem = parse_hex_bytes(&mem).map_err(|message| ParseError { line: 0, message })?;
        if !result.trim().is_empty() {
            t.result = Some(parse_u64(&result).ok_or(ParseError {
                line: 0,
                message: format!("result '{}' is not a number", result.trim()),
            })?);
        }
        if !error.trim().is_empty() {
            t.error = Some(error.trim().to_string());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections() {
        let t = ConformanceTest::parse(
            "# c\n-- asm\nmov %r0, 1 # one\nexit\n-- mem\n00 01\nff\n-- raw\n0x95\n-- result\n0x10\n",
        )
        .unwrap();
        assert_eq!(t.asm.as_deref(), Some("mov %r0, 1 # one\nexit\n"));
        assert_eq!(t.mem, vec![0, 1, 0xff]);
        assert_eq!(t.raw, Some(vec![0x95]));
        assert_eq!(t.result, Some(16));
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert!(parse_hex_bytes("0g").is_err());
        assert_eq!(parse_hex_bytes("00  01  ").unwrap(), vec![0, 1]);
    }
}
