//! Raw bytecode test-run as XDP programs: each program loaded in a forked child
//! (through [`crate::run_object`], so that a verifier that kills the loader loses no
//! verdict) and run once with `BPF_PROG_TEST_RUN` on its packet; the result is the
//! kernel's `retval` and the packet after the run.
//!
//! Many programs go to one child ([`XDP_BATCH`] at a time) to keep this fast.

use crate::object::{prog_type, KProgram, KRun};
use crate::{KObject, LoadOutcome};

/// Programs loaded per child process (each holds a descriptor until the child exits).
pub const XDP_BATCH: usize = 128;

/// A program (little-endian instruction bytes, without map references) and the packet
/// it runs on (at least 14 bytes: the kernel's XDP test run wants an Ethernet header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XdpCase {
    pub insns: Vec<u8>,
    pub packet: Vec<u8>,
}

/// What became of one [`XdpCase`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XdpOutcome {
    /// Loaded and run: the kernel's `retval` (the low 32 bits of r0, whatever the value,
    /// not only the XDP actions) and the packet after the run.
    Ran { retval: u32, packet: Vec<u8> },
    /// The verifier refused it.
    Rejected { errno: i32, log: String },
    /// No verdict: the loading process died (this kernel's verifier can kill it), or the
    /// batch's child failed; the reason.
    CouldNotJudge(String),
    /// Loaded, but `BPF_PROG_TEST_RUN` failed; the error.
    RunFailed(String),
}

impl XdpOutcome {
    /// The verifier's error line of a rejection (the last meaningful line of its log).
    pub fn error_line(&self) -> Option<&str> {
        match self {
            XdpOutcome::Rejected { log, .. } => crate::prog::error_line(log).or(Some("")),
            _ => None,
        }
    }
}

/// Loads and test-runs every case as an XDP program in forked children, [`XDP_BATCH`]
/// per child; one outcome per case, in order. Without the kernel (not root, not Linux)
/// every case is [`XdpOutcome::CouldNotJudge`] with the reason.
pub fn run_xdp(cases: &[XdpCase]) -> Vec<XdpOutcome> {
    let mut out = Vec::with_capacity(cases.len());
    for batch in cases.chunks(XDP_BATCH) {
        out.extend(run_batch(batch));
    }
    out
}

fn run_batch(batch: &[XdpCase]) -> Vec<XdpOutcome> {
    let obj = KObject {
        maps: Vec::new(),
        programs: batch
            .iter()
            .enumerate()
            .map(|(i, c)| KProgram {
                name: format!("xdp_case_{i}"),
                prog_type: prog_type::XDP,
                insns: c.insns.clone(),
                load: true,
                ..KProgram::default()
            })
            .collect(),
        license: "GPL".into(),
        preloads: Vec::new(),
        printk: false,
    };
    let runs: Vec<KRun> = batch
        .iter()
        .enumerate()
        .map(|(i, c)| KRun {
            program: i,
            data_in: Some(c.packet.clone()),
            ..KRun::default()
        })
        .collect();
    let res = match crate::run_object(&obj, &runs) {
        Ok(r) => r,
        Err(e) => return vec![XdpOutcome::CouldNotJudge(e.to_string()); batch.len()],
    };
    (0..batch.len())
        .map(|i| match res.programs.get(i) {
            Some(LoadOutcome::Loaded) => match res.runs.get(i) {
                Some(r) => match (&r.error, &r.data_out) {
                    (None, Some(p)) => XdpOutcome::Ran {
                        retval: r.retval,
                        packet: p.clone(),
                    },
                    (Some(e), _) => XdpOutcome::RunFailed(e.clone()),
                    (None, None) => XdpOutcome::RunFailed("no packet came back".into()),
                },
                None => XdpOutcome::RunFailed("no run reported".into()),
            },
            Some(LoadOutcome::Rejected { errno, log }) => XdpOutcome::Rejected {
                errno: *errno,
                log: log.clone(),
            },
            Some(LoadOutcome::CouldNotJudge(why)) => XdpOutcome::CouldNotJudge(why.clone()),
            Some(LoadOutcome::NotLoaded) | None => {
                XdpOutcome::CouldNotJudge("the program was not loaded".into())
            }
        })
        .collect()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::test_insns as insns;

    #[test]
    fn retval_packet_and_rejections() {
        if let Err(e) = crate::availability() {
            eprintln!("SKIPPED: {e}");
            return;
        }
        // r2 = data; r3 = data_end; r4 = r2 + 16; if r4 > r3 goto out;
        // *(u32 *)(r2 + 2) = 0x11223344; out: r0 = 0xdeadbeef (not an XDP action); exit
        let writes = insns(&[
            (0x61, 0x12, 0, 0),
            (0x61, 0x13, 4, 0),
            (0xbf, 0x24, 0, 0),
            (0x07, 0x04, 0, 16),
            (0x2d, 0x34, 1, 0),
            (0x62, 0x02, 2, 0x1122_3344),
            (0x18, 0x00, 0, 0xdead_beefu32 as i32),
            (0, 0, 0, 0x77),
            (0x95, 0, 0, 0),
        ]);
        // r0 read before it is written.
        let bad = insns(&[(0x95, 0, 0, 0)]);
        let packet: Vec<u8> = (0..20).collect();
        let cases = vec![
            XdpCase {
                insns: writes.clone(),
                packet: packet.clone(),
            },
            XdpCase {
                insns: bad,
                packet: packet.clone(),
            },
            XdpCase {
                insns: writes,
                packet: packet.clone(),
            },
        ];
        let out = run_xdp(&cases);
        let mut want = packet;
        want[2..6].copy_from_slice(&0x1122_3344u32.to_le_bytes());
        let ran = XdpOutcome::Ran {
            retval: 0xdead_beef,
            packet: want,
        };
        assert_eq!(
            out[0], ran,
            "the retval is r0's low 32 bits, whatever it is"
        );
        assert_eq!(out[1].error_line(), Some("R0 !read_ok"), "{:?}", out[1]);
        assert_eq!(out[2], ran);
    }

    #[test]
    fn batches_keep_the_order() {
        if let Err(e) = crate::availability() {
            eprintln!("SKIPPED: {e}");
            return;
        }
        // r0 = i; exit, for more programs than one batch holds.
        let cases: Vec<XdpCase> = (0..XDP_BATCH as i32 + 3)
            .map(|i| XdpCase {
                insns: insns(&[(0xb7, 0, 0, i), (0x95, 0, 0, 0)]),
                packet: vec![0; 14],
            })
            .collect();
        let out = run_xdp(&cases);
        assert_eq!(out.len(), cases.len());
        for (i, o) in out.iter().enumerate() {
            assert_eq!(
                *o,
                XdpOutcome::Ran {
                    retval: i as u32,
                    packet: vec![0; 14]
                }
            );
        }
    }
}
