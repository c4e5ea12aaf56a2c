//! Errors: every failure names the file, and where known the section and byte offset.

use std::fmt;

/// What went wrong, without the location (see [`LoadError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("not an ELF file: {0}")]
    NotElf(String),
    #[error("ELF machine is {0}, not BPF (247)")]
    NotBpf(u16),
    #[error("big-endian BPF objects are not supported")]
    BigEndian,
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: u64, have: u64 },
    #[error("malformed ELF: {0}")]
    Elf(String),
    #[error("relocation refers to symbol {0}, which does not exist")]
    MissingSymbol(u64),
    #[error("relocation to `{symbol}` is not supported here: {why}")]
    BadRelocation { symbol: String, why: String },
    #[error("call target at instruction {0} is outside every function")]
    BadCallTarget(i64),
    #[error("bad BTF: {0}")]
    Btf(String),
    #[error("bad BTF.ext: {0}")]
    BtfExt(String),
    #[error("CO-RE relocation failed: {0}")]
    Core(String),
    #[error("map definition: {0}")]
    Map(String),
    #[error("bad base64: {0}")]
    Base64(String),
    #[error("bad zlib stream: {0}")]
    Zlib(String),
    #[error(
        "bpf_object is {actual} bytes after decompression but bpf_object_size says {expected}"
    )]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("bad package JSON: {0}")]
    Json(String),
    #[error("package metadata: {0}")]
    Package(String),
    #[error("global variable: {0}")]
    Global(String),
    #[error("I/O error: {0}")]
    Io(String),
}

/// A loader error with its location: `FILE: section S, offset 0x..: what`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub section: Option<String>,
    pub offset: Option<u64>,
    pub kind: ErrorKind,
}

impl LoadError {
    pub fn new(kind: ErrorKind) -> Self {
        LoadError {
            file: String::new(),
            section: None,
            offset: None,
            kind,
        }
    }

    pub(crate) fn at(section: &str, offset: Option<u64>, kind: ErrorKind) -> Self {
        LoadError {
            file: String::new(),
            section: Some(section.to_string()),
            offset,
            kind,
        }
    }

    /// Names the file, unless an inner layer already did (a package names its embedded
    /// object `FILE!bpf_object`).
    pub fn in_file(mut self, file: &str) -> Self {
        if self.file.is_empty() {
            self.file = file.to_string();
        }
        self
    }

    pub(crate) fn in_section(mut self, section: &str) -> Self {
        if self.section.is_none() {
            self.section = Some(section.to_string());
        }
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = if self.file.is_empty() {
            "<input>"
        } else {
            &self.file
        };
        write!(f, "{file}")?;
        if let Some(s) = &self.section {
            write!(f, ": section {s}")?;
        }
        if let Some(o) = self.offset {
            write!(f, ", offset {o:#x}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for LoadError {}

impl From<ErrorKind> for LoadError {
    fn from(kind: ErrorKind) -> Self {
        LoadError::new(kind)
    }
}

pub type Result<T, E = LoadError> = std::result::Result<T, E>;
