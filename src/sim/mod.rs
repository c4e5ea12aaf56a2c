//! Trace-driven simulation: the `run` command's machinery.
//!
//! [`trace`] reads events, [`machine`] turns a loaded object into running state, [`run`]
//! replays events through the programs attached to their hooks ([`hooks`] says which, and
//! what context each program type sees; [`kmem`] lays out simulated kernel structures),
//! [`synth`] makes a workload when no trace is given, and [`output`] formats what happened.

pub mod hooks;
pub mod kmem;
pub mod machine;
pub mod output;
pub mod run;
pub mod synth;
pub mod trace;
