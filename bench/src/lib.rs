//! `make bench`: the Switchboard server measured from outside, every figure against a
//! baseline measured in the same run (these machines are noisy, so only ratios are
//! compared with targets).
//!
//! The `bench` binary runs it (`src/bin/bench.rs`); the modules, by concern:
//! setups and their processes ([`setup`], [`process`], [`databases`], [`fixtures`]),
//! baselines ([`baselines`]), the figures ([`http_figures`], [`realtime_figures`], and
//! [`lists`]), load and sockets ([`load`], [`fleet`], [`client`]), /proc readings ([`sys`]),
//! and what comes out ([`report`], [`output`], [`progress`], [`harness`]).

pub mod baselines;
pub mod client;
pub mod databases;
pub mod fixtures;
pub mod fleet;
pub mod harness;
pub mod http_figures;
pub mod lists;
pub mod load;
pub mod output;
pub mod process;
pub mod progress;
pub mod realtime_figures;
pub mod report;
pub mod setup;
pub mod sys;
pub mod target;
