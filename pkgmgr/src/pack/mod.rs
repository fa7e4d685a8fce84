//! Pack authoring: lint, build, push (publish) and inspect.

pub mod build;
pub mod inspect;
pub mod layer;
pub mod publish;
pub mod sources;

pub use build::{BuildOptions, BuiltPack, build, load};
pub use publish::{PushOutcome, push};
