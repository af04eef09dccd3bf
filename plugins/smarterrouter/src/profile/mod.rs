//! The profiler: measures each model's quality per category with prompt suites whose answers
//! are checked automatically ([`graders`], [`suites`]), and its speed (time to first token,
//! tokens/s) and, on Ollama nodes, load time and VRAM. Results are [`ModelProfile`]s in the
//! store; the scoring engine uses them instead of size priors.

pub mod cli;
pub mod graders;
pub mod jobs;
pub mod judge;
pub mod remote;
pub mod run;
pub mod runner;
pub mod suites;

pub use crate::model::{wilson, CategoryResult, ModelProfile, ProfileBook};
