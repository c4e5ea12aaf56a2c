//! Typed access to global variables: parse a command-line string by the variable's BTF
//! type and write it little-endian into its data map, as ecli does; render values back.

use serde::Serialize;

use crate::btf::{int_encoding, Btf, Kind};
use crate::error::{ErrorKind, LoadError, Result};
use crate::model::{GlobalVar, Object};

fn gerr(msg: impl Into<String>) -> LoadError {
    LoadError::new(ErrorKind::Global(msg.into()))
}

/// How a value of a BTF type is read and printed: what the runtime needs to decode event
/// fields and what `set_global` needs to parse options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValueKind {
    Bool,
    /// Integers and pointers (pointers as unsigned 8-byte values).
    Int {
        size: usize,
        signed: bool,
    },
    Float {
        size: usize,
    },
    Enum {
        size: usize,
        signed: bool,
        type_id: u32,
    },
    /// `char[N]` and other one-byte-element arrays: a NUL-terminated string.
    CharArray {
        len: usize,
    },
    Array {
        elem: Box<ValueKind>,
        elem_size: usize,
        len: usize,
    },
    /// Structs, unions and anything else: raw bytes.
    Other,
}

/// The [`ValueKind`] of a BTF type.
pub fn value_kind(btf: &Btf, type_id: u32) -> ValueKind {
    value_kind_at(btf, type_id, 0)
}

fn value_kind_at(btf: &Btf, type_id: u32, depth: usize) -> ValueKind {
    let id = btf.skip_mods_typedefs(type_id);
    match btf.kind(id) {
        Kind::Int { encoding, .. } if encoding & int_encoding::BOOL != 0 => ValueKind::Bool,
        Kind::Int { size, encoding, .. } => ValueKind::Int {
            size: *size as usize,
            signed: encoding & int_encoding::SIGNED != 0,
        },
        Kind::Ptr(_) => ValueKind::Int {
            size: 8,
            signed: false,
        },
        Kind::Float { size } => ValueKind::Float {
            size: *size as usize,
        },
        Kind::Enum { size, signed, .. } | Kind::Enum64 { size, signed, .. } => ValueKind::Enum {
            size: *size as usize,
            signed: *signed,
            type_id: id,
        },
        Kind::Array { elem, nelems, .. } if depth < 8 => {
            let elem_size = btf.size_of(*elem).unwrap_or(0) as usize;
            match btf.kind(btf.skip_mods_typedefs(*elem)) {
                Kind::Int {
                    size: 1, encoding, ..
                } if encoding & int_encoding::BOOL == 0 => ValueKind::CharArray {
                    len: *nelems as usize,
                },
                _ if elem_size == 0 => ValueKind::Other,
                _ => ValueKind::Array {
                    elem: Box::new(value_kind_at(btf, *elem, depth + 1)),
                    elem_size,
                    len: *nelems as usize,
                },
            }
        }
        _ => ValueKind::Other,
    }
}

fn shape(btf: Option<&Btf>, var: &GlobalVar) -> ValueKind {
    match btf.filter(|_| var.type_id != 0) {
        Some(btf) => value_kind(btf, var.type_id),
        // Without BTF only the size is known.
        None => match var.size {
            1 | 2 | 4 | 8 | 16 => ValueKind::Int {
                size: var.size as usize,
                signed: true,
            },
            _ => ValueKind::Other,
        },
    }
}

fn parse_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u128::from_str_radix(h, 16).ok()?
    } else {
        body.parse::<u128>().ok()?
    };
    if neg {
        if v > i128::MAX as u128 + 1 {
            return None;
        }
        Some((v as i128).wrapping_neg())
    } else {
        i128::try_from(v).ok().or(Some(v as i128)) // u128 above i128::MAX wraps
    }
}

/// Encodes `v` in `size` bytes if it fits the range of that size and signedness.
fn encode_int(v: i128, size: usize, signed: bool, text: &str) -> Result<Vec<u8>> {
    let kind = if signed { "signed" } else { "unsigned" };
    if size == 0 || size > 16 {
        return Err(gerr(format!("unsupported {size}-byte {kind} integer")));
    }
    let bits = size * 8;
    let fits = if bits >= 128 {
        true
    } else if signed {
        let min = -(1i128 << (bits - 1));
        let max = (1i128 << (bits - 1)) - 1;
        v >= min && v <= max
    } else {
        v >= 0 && v < (1i128 << bits)
    };
    if !fits {
        return Err(gerr(format!(
            "{text:?} does not fit a {size}-byte {kind} integer"
        )));
    }
    Ok(v.to_le_bytes()[..size].to_vec())
}

impl Object {
    /// Sets a global variable from text, parsed by its BTF type: integers (decimal or
    /// `0x` hex), `true`/`false` for bool, enumerator names or numbers for enums, floats,
    /// and strings for `char[N]` (NUL-padded; must leave room for the NUL).
    pub fn set_global(&mut self, name: &str, value: &str) -> Result<()> {
        let var = self
            .global(name)
            .cloned()
            .ok_or_else(|| gerr(format!("no global variable named {name}")))?;
        let bytes = self.encode_global(&var, value).map_err(|e| match e.kind {
            ErrorKind::Global(m) => gerr(format!("{name}: {m}")),
            k => LoadError::new(k),
        })?;
        self.write_global(&var, &bytes)
    }

    fn encode_global(&self, var: &GlobalVar, value: &str) -> Result<Vec<u8>> {
        let size = var.size as usize;
        let mut bytes = match shape(self.btf.as_ref(), var) {
            ValueKind::Bool => match value.trim() {
                "true" | "1" | "yes" | "on" => vec![1],
                "false" | "0" | "no" | "off" => vec![0],
                _ => return Err(gerr(format!("{value:?} is not a bool (true/false)"))),
            },
            ValueKind::Int { size, signed } => {
                let v =
                    parse_int(value).ok_or_else(|| gerr(format!("{value:?} is not an integer")))?;
                encode_int(v, size, signed, value)?
            }
            ValueKind::Float { size } => {
                let v: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| gerr(format!("{value:?} is not a number")))?;
                match size {
                    4 => (v as f32).to_le_bytes().to_vec(),
                    8 => v.to_le_bytes().to_vec(),
                    _ => return Err(gerr(format!("unsupported {size}-byte float"))),
                }
            }
            ValueKind::Enum {
                size,
                signed,
                type_id,
            } => {
                let btf = self.btf.as_ref().ok_or_else(|| gerr("no BTF"))?;
                let named = match btf.kind(type_id) {
                    Kind::Enum { values, .. } | Kind::Enum64 { values, .. } => values
                        .iter()
                        .find(|v| btf.str_at(v.name_off) == value.trim())
                        .map(|v| v.value as i128),
                    _ => None,
                };
                let v = named.or_else(|| parse_int(value)).ok_or_else(|| {
                    gerr(format!("{value:?} is neither an enumerator nor a number"))
                })?;
                // Enumerators are stored as i64; accept them whatever the enum's signedness.
                let v = if !signed && v < 0 && size == 8 {
                    v + (1i128 << 64)
                } else {
                    v
                };
                encode_int(v, size, signed || v < 0, value)?
            }
            ValueKind::CharArray { len } => {
                let b = value.as_bytes();
                if b.len() >= len {
                    return Err(gerr(format!(
                        "string of {} bytes does not fit char[{len}] with its NUL",
                        b.len()
                    )));
                }
                let mut v = b.to_vec();
                v.resize(len, 0);
                v
            }
            ValueKind::Other | ValueKind::Array { .. } => {
                return Err(gerr(format!(
                    "cannot set a variable of type {} from text",
                    var.type_name
                )))
            }
        };
        if bytes.len() > size {
            return Err(gerr(format!(
                "value is {} bytes but the variable has {size}",
                bytes.len()
            )));
        }
        bytes.resize(size, 0);
        Ok(bytes)
    }

    fn write_global(&mut self, var: &GlobalVar, bytes: &[u8]) -> Result<()> {
        let map = self
            .maps
            .get_mut(var.map)
            .ok_or_else(|| gerr(format!("{}: map {} missing", var.name, var.map)))?;
        let start = var.offset as usize;
        let dst = map
            .data
            .get_mut(start..start + bytes.len())
            .ok_or_else(|| gerr(format!("{}: outside its section", var.name)))?;
        dst.copy_from_slice(bytes);
        Ok(())
    }

    /// Writes raw bytes into a global (size must match).
    pub fn set_global_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let var = self
            .global(name)
            .cloned()
            .ok_or_else(|| gerr(format!("no global variable named {name}")))?;
        if bytes.len() != var.size as usize {
            return Err(gerr(format!(
                "{name}: {} bytes given, variable has {}",
                bytes.len(),
                var.size
            )));
        }
        self.write_global(&var, bytes)
    }

    /// Renders a global's current value by its type (`42`, `true`, `"str"`, `0x..` bytes).
    pub fn global_value(&self, name: &str) -> Option<String> {
        let var = self.global(name)?;
        let bytes = self.global_bytes(name)?;
        Some(render(self.btf.as_ref(), var, bytes))
    }
}

fn le_int(bytes: &[u8], signed: bool) -> i128 {
    let mut buf = [0u8; 16];
    let n = bytes.len().min(16);
    buf[..n].copy_from_slice(&bytes[..n]);
    if signed && n > 0 && n < 16 && bytes[n - 1] & 0x80 != 0 {
        for b in &mut buf[n..] {
            *b = 0xff;
        }
    }
    i128::from_le_bytes(buf)
}

fn render(btf: Option<&Btf>, var: &GlobalVar, bytes: &[u8]) -> String {
    format_value(btf, &shape(btf, var), bytes)
}

/// Renders bytes as a value of the given kind (`42`, `true`, `"str"`, `[1, 2]`, `0x..`).
pub fn format_value(btf: Option<&Btf>, kind: &ValueKind, bytes: &[u8]) -> String {
    match kind {
        ValueKind::Bool => (bytes.first().copied().unwrap_or(0) != 0).to_string(),
        ValueKind::Int { signed, .. } => {
            let v = le_int(bytes, *signed);
            if *signed || v >= 0 {
                v.to_string()
            } else {
                (v as u128).to_string()
            }
        }
        ValueKind::Float { size: 4 } if bytes.len() == 4 => {
            f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]).to_string()
        }
        ValueKind::Float { size: 8 } if bytes.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            f64::from_le_bytes(b).to_string()
        }
        ValueKind::Enum {
            signed, type_id, ..
        } => {
            let v = le_int(bytes, *signed);
            let name = btf.and_then(|btf| match btf.kind(*type_id) {
                Kind::Enum { values, .. } | Kind::Enum64 { values, .. } => values
                    .iter()
                    .find(|e| e.value as i128 == v || (e.value as u32 as i128) == v)
                    .map(|e| btf.str_at(e.name_off).to_string()),
                _ => None,
            });
            name.unwrap_or_else(|| v.to_string())
        }
        ValueKind::CharArray { .. } => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            format!("{:?}", String::from_utf8_lossy(&bytes[..end]))
        }
        ValueKind::Array {
            elem, elem_size, ..
        } if *elem_size > 0 => {
            let items: Vec<String> = bytes
                .chunks_exact(*elem_size)
                .map(|c| format_value(btf, elem, c))
                .collect();
            format!("[{}]", items.join(", "))
        }
        _ => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}
